"""Tests of `forwardforward plot`: every figure from a small generated run, labels, guards."""

import shutil
import sys

import pytest

from forwardforward import plotting
from forwardforward.config import load_config
from forwardforward.training import train

from cli_helpers import assert_one_line_error
from tiny_settings import TINY_OVERRIDES

pytest.importorskip("matplotlib", reason="matplotlib is not installed")
from matplotlib.image import imread  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_PNG_BYTES = 20_000
MIN_PNG_SIDE = 300


@pytest.fixture(scope="module")
def plotted_run(tmp_path_factory, synthetic_data_dir):
    """A finished 3-epoch run on the synthetic data. Tests that change it work on a copy."""
    run_dir = tmp_path_factory.mktemp("plotted") / "run"
    train(load_config("mnist-quick", list(TINY_OVERRIDES)), out_dir=run_dir,
          data_dir=str(synthetic_data_dir), progress=False)
    return run_dir


@pytest.fixture
def run_copy(plotted_run, tmp_path):
    return shutil.copytree(plotted_run, tmp_path / "run")


def assert_valid_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), f"{path} is not a PNG file"
    assert len(data) > MIN_PNG_BYTES, f"{path} has only {len(data)} bytes"
    height, width = imread(path).shape[:2]
    assert height >= MIN_PNG_SIDE, f"{path} is only {height} pixels high"
    assert width >= MIN_PNG_SIDE, f"{path} is only {width} pixels wide"


def test_cli_writes_every_figure(run_cli, plotted_run, tmp_path):
    out = tmp_path / "figures"

    result = run_cli("plot", plotted_run, "--out", out)

    assert result.code == 0, result.err
    expected = [out / f"{name}.png" for name in plotting.FIGURE_NAMES]
    assert result.out.splitlines() == [str(path) for path in expected]
    assert result.err == ""
    for path in expected:
        assert_valid_png(path)


def test_default_out_folder(run_cli, run_copy):
    result = run_cli("plot", run_copy)

    assert result.code == 0, result.err
    assert sorted(p.name for p in (run_copy / "plots").iterdir()) == sorted(
        f"{name}.png" for name in plotting.FIGURE_NAMES
    )


@pytest.mark.parametrize("name", plotting.FIGURE_NAMES)
def test_figure_titles_labels_legend(plotted_run, name):
    fig = plotting.FIGURE_FUNCTIONS[name](plotting.load_run_data(plotted_run))

    colorbar_axes = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    panels = [ax for ax in fig.axes if ax.axison and ax not in colorbar_axes]
    assert panels
    assert fig.get_suptitle() or len(panels) == 1, f"{name} has several panels but no overall title"
    for ax in panels:
        assert ax.get_title(), f"a panel of {name} has no title"
        assert ax.get_xlabel() or fig.get_supxlabel(), f"a panel of {name} has no x label"
        assert ax.get_ylabel() or fig.get_supylabel(), f"a panel of {name} has no y label"
    has_legend = any(ax.get_legend() is not None for ax in fig.axes)
    has_labelled_colorbar = any(ax.get_ylabel() for ax in colorbar_axes)
    assert has_legend or has_labelled_colorbar, f"{name} has neither a legend nor a labelled colour bar"


def test_units_in_axis_labels(plotted_run):
    run = plotting.load_run_data(plotted_run)

    learning = plotting.learning_curves_figure(run)
    accuracy = plotting.layer_accuracy_figure(run)

    assert [ax.get_ylabel() for ax in learning.axes] == [
        "loss per sample pair (nats)", "mean goodness / threshold (ratio)", "error (%)"
    ]
    assert accuracy.axes[0].get_ylabel() == "accuracy (%)"


def test_histogram_epoch_choice():
    records = [{"epoch": epoch} for epoch in range(1, 13)]

    assert plotting.histogram_epochs(records) == [1, 5, 8, 12]
    assert plotting.histogram_epochs(records[:3]) == [1, 2, 3]
    assert plotting.histogram_epochs(records, count=2) == [1, 12]


def test_histogram_missing_epoch(plotted_run):
    run = plotting.load_run_data(plotted_run)

    with pytest.raises(plotting.UsageError, match=r"no goodness histogram for epochs \[9\]"):
        plotting.goodness_histograms_figure(run, epochs=[1, 9])


def test_histogram_no_epochs(plotted_run):
    run = plotting.load_run_data(plotted_run)

    with pytest.raises(plotting.UsageError, match="at least one epoch"):
        plotting.goodness_histograms_figure(run, epochs=[])


def test_skips_what_run_lacks(run_cli, run_copy, tmp_path):
    (run_copy / "checkpoint.pt").unlink()
    (run_copy / "goodness_histograms.jsonl").unlink()
    out = tmp_path / "figures"

    result = run_cli("plot", run_copy, "--out", out)

    assert result.code == 0, result.err
    assert sorted(p.name for p in out.iterdir()) == ["layer_accuracy.png", "learning_curves.png"]
    assert "skipped goodness_histograms: the run has no goodness_histograms.jsonl" in result.err
    assert "skipped first_layer_weights: no checkpoint.pt" in result.err


def test_missing_matplotlib(run_cli, plotted_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "figures"

    result = run_cli("plot", plotted_run, "--out", out)

    assert_one_line_error(result, 2)
    assert "matplotlib, which is not installed" in result.err
    assert "pip install 'forwardforward[plot]'" in result.err
    assert not out.exists()


def test_not_a_run(run_cli, tmp_path):
    result = run_cli("plot", tmp_path)

    assert_one_line_error(result, 2)
    assert "contains no forwardforward run" in result.err


def test_no_finished_epoch(run_cli, run_copy):
    (run_copy / "metrics.jsonl").write_text("", encoding="utf-8")

    result = run_cli("plot", run_copy)

    assert_one_line_error(result, 2)
    assert "no finished epoch" in result.err


def test_out_is_file(run_cli, plotted_run, tmp_path):
    target = tmp_path / "figures.png"
    target.write_bytes(b"")

    result = run_cli("plot", plotted_run, "--out", target)

    assert_one_line_error(result, 2)
    assert f"--out {target} is a file" in result.err


def test_weights_need_an_image_shape(run_copy):
    run = plotting.load_run_data(run_copy)

    with pytest.raises(plotting.FigureUnavailable, match="101 inputs"):
        plotting._image_shape(run, 101)
    assert plotting._image_shape(run, 784) == (1, 28, 28)
    assert plotting._image_shape(run, 100) == (1, 10, 10)


BINS = {"log10_ratio_min": -3.0, "log10_ratio_max": 2.0, "count": 1000}


def test_histogram_view_narrow():
    # 300 samples in slots 590 to 619: ratios from about 0.89 to 1.26.
    side = {"first_slot": 590, "counts": [10] * 30}

    first, last, merge = plotting.histogram_view([side], BINS)

    assert first <= 590
    assert last >= 619
    assert 619 - 590 < last - first < 60
    assert merge == 1


def test_histogram_view_wide():
    # The positives spread over all bins, the negatives sit in one.
    spread = {"first_slot": 1, "counts": [5] * 1000}
    peak = {"first_slot": 400, "counts": [1000]}

    first, last, merge = plotting.histogram_view([spread, peak], BINS)

    assert first <= 2
    assert last >= 999
    assert merge == 13  # 1000 bins shown in bars of 13 bins, at most 80 bars


def test_histogram_view_ignores_outside_slots():
    # Underflow (slot 0) and overflow (slot 1001) are not part of the view.
    side = {"first_slot": 0, "counts": [50] + [0] * 599 + [10]}

    first, last, merge = plotting.histogram_view([side], BINS)

    assert first <= 600 <= last
    assert last - first < 10
    assert merge == 1
