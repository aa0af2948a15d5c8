"""Tests that the seed alone decides a run's weights and metrics, and that training learns."""

import json

import torch

from forwardforward.config import load_config
from forwardforward.training import train

TIMING_SUFFIXES = ("_time_s", "samples_per_s")


def run_tiny(run_dir, data_dir, overrides):
    config = load_config("mnist-quick", overrides)
    return train(config, out_dir=run_dir, data_dir=str(data_dir), progress=False)


def read_metrics(run_dir):
    """Return the records of metrics.jsonl without the keys that measure time."""
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.endswith(TIMING_SUFFIXES)} for line in lines]


def load_state(run_dir):
    return torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)


def weights_equal(first_dir, second_dir):
    """Return whether every network and read-out tensor of two runs is bit for bit the same."""
    first, second = load_state(first_dir), load_state(second_dir)
    return all(
        torch.equal(first[part][name], second[part][name])
        for part in ("network", "readout")
        for name in first[part]
    )


def test_same_seed_same_metrics(tmp_path, synthetic_data_dir, tiny_overrides):
    run_tiny(tmp_path / "a", synthetic_data_dir, tiny_overrides)
    run_tiny(tmp_path / "b", synthetic_data_dir, tiny_overrides)

    assert read_metrics(tmp_path / "a") == read_metrics(tmp_path / "b")
    assert weights_equal(tmp_path / "a", tmp_path / "b")


def test_same_seed_same_rng_state(tmp_path, synthetic_data_dir, tiny_overrides):
    run_tiny(tmp_path / "a", synthetic_data_dir, tiny_overrides)
    run_tiny(tmp_path / "b", synthetic_data_dir, tiny_overrides)

    first, second = load_state(tmp_path / "a"), load_state(tmp_path / "b")
    assert torch.equal(first["shuffle_rng"], second["shuffle_rng"])
    assert torch.equal(first["negatives_rng"], second["negatives_rng"])


def test_other_seed_other_weights(tmp_path, synthetic_data_dir, tiny_overrides):
    run_tiny(tmp_path / "a", synthetic_data_dir, tiny_overrides)
    run_tiny(tmp_path / "b", synthetic_data_dir, [*tiny_overrides, "train.seed=18"])

    assert not weights_equal(tmp_path / "a", tmp_path / "b")
    assert read_metrics(tmp_path / "a") != read_metrics(tmp_path / "b")


def test_training_beats_chance(tmp_path, synthetic_data_dir, tiny_overrides):
    # Guessing among ten classes gives 90 % error. The synthetic classes are easy to separate.
    result = run_tiny(tmp_path / "run", synthetic_data_dir, [*tiny_overrides, "train.epochs=10"])

    assert result.final["test/error_softmax"] < 50.0
    assert result.final["test/error_layer1"] < 50.0


def test_loss_falls(tmp_path, synthetic_data_dir, tiny_overrides):
    run_tiny(tmp_path / "run", synthetic_data_dir, [*tiny_overrides, "train.epochs=10"])

    records = read_metrics(tmp_path / "run")
    assert records[-1]["layer1/loss"] < records[0]["layer1/loss"]
    assert records[-1]["train/readout_loss"] < records[0]["train/readout_loss"]
