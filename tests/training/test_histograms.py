"""Tests of the goodness histograms: binning by hand, the file a run writes, and resume."""

import json

import numpy as np
import pytest
import torch

from forwardforward.config import load_config
from forwardforward.training import train
from forwardforward.training.histograms import (
    HISTOGRAMS_FILE,
    LOG10_RATIO_MAX,
    LOG10_RATIO_MIN,
    NUM_BINS,
    GoodnessHistograms,
    bin_edges,
    full_counts,
)

from tiny_settings import TINY_OVERRIDES
from run_helpers import train_until_interrupted

BIN_WIDTH = (LOG10_RATIO_MAX - LOG10_RATIO_MIN) / NUM_BINS


def slot_of(ratio):
    """Slot of a goodness / threshold ratio that lies strictly inside a bin."""
    return int(np.floor((np.log10(ratio) - LOG10_RATIO_MIN) / BIN_WIDTH)) + 1


def read_lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_bins_by_hand():
    histograms = GoodnessHistograms([10.0, 4.0])
    # Ratios for block 1: 0 (below the range), 1.06, 1.06, 20.0 and 5000 (above the range).
    pos_1 = torch.tensor([0.0, 10.6, 10.6, 200.0, 50_000.0])
    neg_1 = torch.tensor([0.5, 0.5])
    pos_2 = torch.tensor([4.0 * 0.0125])
    neg_2 = torch.tensor([4.0 * 33.0, 4.0 * 33.0, 4.0 * 33.0])

    histograms.add([pos_1, pos_2], [neg_1, neg_2])
    record = histograms.to_record(epoch=7)

    assert record["epoch"] == 7
    bins = record["bins"]
    assert bins == {"log10_ratio_min": -3.0, "log10_ratio_max": 2.0, "count": 1000}
    counts = full_counts(record["layers"]["1"]["pos"], bins)
    assert len(counts) == NUM_BINS + 2
    assert counts[0] == 1
    assert counts[slot_of(1.06)] == 2
    assert counts[slot_of(20.0)] == 1
    assert counts[-1] == 1
    assert counts.sum() == 5
    assert full_counts(record["layers"]["1"]["neg"], bins)[slot_of(0.05)] == 2
    assert full_counts(record["layers"]["2"]["pos"], bins)[slot_of(0.0125)] == 1
    assert full_counts(record["layers"]["2"]["neg"], bins)[slot_of(33.0)] == 3
    assert record["layers"]["2"]["threshold"] == 4.0


def test_counts_trimmed_to_nonempty_slots():
    histograms = GoodnessHistograms([1.0])
    histograms.add([torch.tensor([1.06, 1.5])], [torch.tensor([0.0])])

    layer = histograms.to_record(1)["layers"]["1"]

    assert layer["pos"]["first_slot"] == slot_of(1.06)
    assert len(layer["pos"]["counts"]) == slot_of(1.5) - slot_of(1.06) + 1
    assert layer["pos"]["counts"][0] == 1
    assert layer["pos"]["counts"][-1] == 1
    assert layer["neg"]["first_slot"] == 0
    assert layer["neg"]["counts"] == [1]


def test_moments_by_hand():
    histograms = GoodnessHistograms([2.0])
    histograms.add([torch.tensor([1.0, 3.0])], [torch.tensor([0.5])])
    histograms.add([torch.tensor([5.0])], [torch.tensor([0.25])])

    layer = histograms.to_record(1)["layers"]["1"]

    assert layer["pos"]["sum"] == pytest.approx(9.0)
    assert layer["pos"]["sum_squares"] == pytest.approx(35.0)
    assert layer["pos"]["min"] == 1.0
    assert layer["pos"]["max"] == 5.0
    assert layer["neg"]["sum"] == pytest.approx(0.75)
    assert layer["neg"]["min"] == 0.25


def test_reset_and_unrun_layers():
    histograms = GoodnessHistograms([8.0, 8.0])
    histograms.add([torch.ones(4)], [torch.ones(4)])
    assert list(histograms.to_record(1)["layers"]) == ["1"]

    histograms.reset()

    assert histograms.to_record(2)["layers"] == {}


def test_bin_edges_match_binning():
    edges = bin_edges({"log10_ratio_min": -3.0, "log10_ratio_max": 2.0, "count": 1000})

    assert edges.shape == (1001,)
    assert edges[0] == pytest.approx(1e-3)
    assert edges[-1] == pytest.approx(100.0)
    assert edges[slot_of(1.06) - 1] < 1.06 < edges[slot_of(1.06)]


@pytest.mark.parametrize("thresholds", [[], [1.0, 0.0], [-2.0]])
def test_invalid_thresholds(thresholds):
    with pytest.raises(ValueError, match="thresholds"):
        GoodnessHistograms(thresholds)


def test_too_many_layers():
    histograms = GoodnessHistograms([1.0])
    with pytest.raises(ValueError, match="at most 1 blocks"):
        histograms.add([torch.ones(2), torch.ones(2)], [torch.ones(2), torch.ones(2)])


def test_run_records_every_sample(tiny_run):
    records = read_lines(tiny_run / HISTOGRAMS_FILE)
    metrics = read_lines(tiny_run / "metrics.jsonl")

    assert [r["epoch"] for r in records] == [1, 2, 3]
    for record, epoch_metrics in zip(records, metrics):
        assert sorted(record["layers"]) == ["1", "2"]
        for layer, entry in record["layers"].items():
            # data.limit=300: 300 positive and 300 negative training samples per epoch.
            assert sum(entry["pos"]["counts"]) == 300
            assert sum(entry["neg"]["counts"]) == 300
            assert entry["threshold"] == 32.0
            mean_pos = entry["pos"]["sum"] / 300
            assert mean_pos == pytest.approx(epoch_metrics[f"layer{layer}/goodness_pos"], rel=1e-5)


def test_greedy_records_run_layers(tmp_path, synthetic_data_dir):
    overrides = [*TINY_OVERRIDES, "train.epochs=1", "train.schedule='greedy'"]
    run_dir = tmp_path / "run"

    train(load_config("mnist-quick", overrides), out_dir=run_dir, data_dir=str(synthetic_data_dir), progress=False)

    records = read_lines(run_dir / HISTOGRAMS_FILE)
    assert [sorted(r["layers"]) for r in records] == [["1"], ["1", "2"]]


def test_histograms_survive_resume(tmp_path, synthetic_data_dir, monkeypatch):
    config = load_config("mnist-quick", list(TINY_OVERRIDES))
    reference_dir, resumed_dir = tmp_path / "reference", tmp_path / "resumed"
    train(config, out_dir=reference_dir, data_dir=str(synthetic_data_dir), progress=False)

    # Interrupt the second run at the start of its third epoch, as Ctrl-C would.
    train_until_interrupted(monkeypatch, 2, config, out_dir=resumed_dir, data_dir=str(synthetic_data_dir),
                            progress=False)
    assert [r["epoch"] for r in read_lines(resumed_dir / HISTOGRAMS_FILE)] == [1, 2]

    # A crash after the histogram line but before the checkpoint leaves an extra epoch. A crash
    # inside the write leaves a torn line. Resume must drop both.
    with open(resumed_dir / HISTOGRAMS_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps({"epoch": 3, "bins": {}, "layers": {}}) + "\n")
        f.write('{"epoch": 4, "bi')
    train(resume=resumed_dir, data_dir=str(synthetic_data_dir), progress=False)

    assert read_lines(resumed_dir / HISTOGRAMS_FILE) == read_lines(reference_dir / HISTOGRAMS_FILE)
