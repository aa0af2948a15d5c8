"""Tests of a run whose loss becomes NaN: a clear error, and the last good checkpoint kept."""

import json
import math

import pytest
import torch

from forwardforward.config import load_config
from forwardforward.errors import TrainingError
from forwardforward.training import train

# With this learning rate the loss becomes NaN or infinite within a few epochs. On the synthetic
# data it is still finite after epoch 1 and fails in epoch 2.
EXPLODING_LR = "optimizer.lr=1e3"


def load_state(run_dir):
    return torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)


def finite_tensors(value):
    """Yield (name, tensor) for every floating-point tensor nested in a checkpoint value."""
    if isinstance(value, torch.Tensor):
        if value.is_floating_point():
            yield "", value
    elif isinstance(value, dict):
        for key, item in value.items():
            for name, tensor in finite_tensors(item):
                yield f"{key}.{name}" if name else str(key), tensor
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            for name, tensor in finite_tensors(item):
                yield f"{index}.{name}" if name else str(index), tensor


@pytest.fixture
def exploded_run(tmp_path, synthetic_data_dir, tiny_overrides):
    """Folder of a run stopped by TrainingError, and the error."""
    run_dir = tmp_path / "run"
    config = load_config("mnist-quick", [*tiny_overrides, EXPLODING_LR])
    with pytest.raises(TrainingError) as caught:
        train(config, out_dir=run_dir, data_dir=str(synthetic_data_dir), progress=False)
    return run_dir, caught.value


def test_nan_message(exploded_run):
    run_dir, error = exploded_run
    epoch = load_state(run_dir)["epoch"]

    assert "NaN" in str(error)
    assert f"in epoch {epoch + 1}" in str(error)
    assert "optimizer.lr" in str(error)


def test_nan_after_good_epoch(exploded_run):
    run_dir, _ = exploded_run

    assert load_state(run_dir)["epoch"] >= 1


def test_nan_checkpoint_finite(exploded_run):
    run_dir, _ = exploded_run

    tensors = list(finite_tensors(load_state(run_dir)))
    assert tensors
    for name, tensor in tensors:
        assert bool(torch.isfinite(tensor).all()), f"{name} holds NaN or infinity"


def test_nan_metrics_good_epochs_only(exploded_run):
    run_dir, _ = exploded_run
    epoch = load_state(run_dir)["epoch"]

    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [record["epoch"] for record in records] == list(range(1, epoch + 1))
    for record in records:
        for key, value in record.items():
            assert isinstance(value, (int, float)) and math.isfinite(value), f"{key} = {value!r}"


def test_nan_with_progress_bar(tmp_path, synthetic_data_dir, tiny_overrides):
    config = load_config("mnist-quick", [*tiny_overrides, EXPLODING_LR])

    with pytest.raises(TrainingError, match="NaN"):
        train(config, out_dir=tmp_path / "run", data_dir=str(synthetic_data_dir), progress=True)


def test_nan_cli_exit(run_cli, tmp_path, synthetic_data_dir, tiny_overrides):
    set_options = [part for assignment in [*tiny_overrides, EXPLODING_LR] for part in ("--set", assignment)]
    run_dir = tmp_path / "run"

    result = run_cli("train", *set_options, "--data-dir", synthetic_data_dir, "--out", run_dir, "--quiet")

    assert result.code == 1
    assert result.err.startswith("forwardforward: error: ")
    assert "NaN" in result.err
    assert result.err.count("\n") == 1
    assert "Traceback" not in result.err


def test_nan_evaluate_after(run_cli, exploded_run, synthetic_data_dir):
    run_dir, _ = exploded_run

    result = run_cli("evaluate", run_dir, "--json", "--data-dir", synthetic_data_dir)

    assert result.code == 0, result.err
    assert json.loads(result.out)["epoch"] == load_state(run_dir)["epoch"]
