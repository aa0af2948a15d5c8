"""Tests of TensorBoard logging: the event files a run writes, resume, and a missing package."""

import sys

import pytest

from forwardforward.config import load_config
from forwardforward.errors import UsageError
from forwardforward.training import train

from cli_helpers import assert_one_line_error, set_options
from tiny_settings import TINY_OVERRIDES
from run_helpers import train_until_interrupted

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator", reason="tensorboard is not installed"
)


def read_events(run_dir):
    accumulator = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"))
    accumulator.Reload()
    return accumulator


def test_scalars_and_histograms(tmp_path, synthetic_data_dir):
    run_dir = tmp_path / "run"
    config = load_config("mnist-quick", list(TINY_OVERRIDES))

    result = train(config, out_dir=run_dir, data_dir=str(synthetic_data_dir), progress=False, tensorboard=True)

    events = read_events(run_dir)
    tags = events.Tags()
    assert "layer1/loss" in tags["scalars"]
    assert "test/error_goodness" in tags["scalars"]
    assert [event.step for event in events.Scalars("layer2/loss")] == [1, 2, 3]
    assert events.Scalars("test/error_softmax")[-1].value == pytest.approx(result.final["test/error_softmax"])
    assert "layer1/goodness_pos_histogram" in tags["histograms"]
    assert "layer2/goodness_neg_histogram" in tags["histograms"]
    last = events.Histograms("layer1/goodness_pos_histogram")[-1]
    assert last.step == 3
    assert last.histogram_value.num == 300


def test_resume_continues_log(tmp_path, synthetic_data_dir, monkeypatch):
    run_dir = tmp_path / "run"
    config = load_config("mnist-quick", list(TINY_OVERRIDES))
    train_until_interrupted(monkeypatch, 2, config, out_dir=run_dir, data_dir=str(synthetic_data_dir),
                            progress=False, tensorboard=True)

    # No tensorboard=True here: the existing tensorboard/ folder keeps the log going.
    train(resume=run_dir, data_dir=str(synthetic_data_dir), progress=False)

    steps = [event.step for event in read_events(run_dir).Scalars("layer1/loss")]
    assert steps == [1, 2, 3]


def test_missing_package(tmp_path, synthetic_data_dir, monkeypatch, run_cli):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    run_dir = tmp_path / "run"

    with pytest.raises(UsageError, match=r"pip install 'forwardforward\[tensorboard\]'"):
        train(load_config("mnist-quick", list(TINY_OVERRIDES)), out_dir=run_dir,
              data_dir=str(synthetic_data_dir), progress=False, tensorboard=True)
    assert not run_dir.exists()

    result = run_cli("train", *set_options(TINY_OVERRIDES), "--data-dir", synthetic_data_dir, "--out", run_dir,
                     "--quiet", "--tensorboard")
    assert_one_line_error(result, 2)
    assert "tensorboard package" in result.err
