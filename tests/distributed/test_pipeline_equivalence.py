"""The pipeline and data-parallel jobs end with the weights of the single-process schedule."""

import json

import pytest
import torch

from forwardforward.config import load_config
from forwardforward.training import train

from parallel_helpers import TINY_PARALLEL_OVERRIDES, load_run_checkpoint, run_job, set_options

TIMING_KEYS = ("epoch_time_s", "samples_per_s", "eval_time_s")


def single_process_run(run_dir, data_dir, overrides):
    """Train the same recipe in this process and return its run directory."""
    config = load_config("mnist-quick", list(TINY_PARALLEL_OVERRIDES) + list(overrides))
    train(config, out_dir=run_dir, data_dir=str(data_dir), progress=False)
    return run_dir


def parallel_run(run_dir, data_dir, world_size, overrides, *parallel):
    """Run the recipe as a job of `world_size` ranks and return its run directory."""
    args = [*set_options(list(TINY_PARALLEL_OVERRIDES) + list(overrides)), "--data-dir", data_dir,
            "--out", run_dir, "--quiet", "--timeout", 60, *parallel]
    results = run_job(world_size, args)
    for rank, result in enumerate(results):
        assert result.code == 0, f"rank {rank}: {result.err}"
    assert "test error:" in results[0].out
    for result in results[1:]:
        assert result.out == ""  # rank 0 alone prints
    return run_dir


def assert_same_state(expected, actual, atol):
    assert actual["epoch"] == expected["epoch"]
    assert actual["network"].keys() == expected["network"].keys()
    for key, value in expected["network"].items():
        torch.testing.assert_close(actual["network"][key], value, atol=atol, rtol=0, msg=key)
    if expected["readout"] is not None:
        for key, value in expected["readout"].items():
            torch.testing.assert_close(actual["readout"][key], value, atol=atol, rtol=0, msg=f"readout {key}")
    assert torch.equal(actual["negatives_rng"], expected["negatives_rng"])
    assert torch.equal(actual["shuffle_rng"], expected["shuffle_rng"])


def assert_same_metrics(expected_dir, actual_dir, tolerance):
    expected, actual = read_metrics(expected_dir), read_metrics(actual_dir)
    assert len(actual) == len(expected)
    for expected_record, actual_record in zip(expected, actual):
        assert actual_record == pytest.approx(expected_record, rel=tolerance, abs=tolerance)


def read_metrics(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [{k: v for k, v in json.loads(line).items()
             if k not in TIMING_KEYS and not k.startswith("pipeline/")} for line in lines]


@pytest.mark.parametrize(
    ("world_size", "overrides"),
    [
        (3, []),  # hard negatives from the read-out: lock step
        (2, ["negatives.kind='random'", "train.schedule='greedy'", "train.epochs=1"]),
        (2, ["negatives.hard_source='goodness'"]),
    ],
    ids=["hard-readout-3-stages", "random-greedy-2-stages", "hard-goodness-2-stages"],
)
def test_pipeline_equals_single_process(tmp_path, synthetic_data_dir, world_size, overrides):
    expected_dir = single_process_run(tmp_path / "single", synthetic_data_dir, overrides)
    actual_dir = parallel_run(tmp_path / "pipeline", synthetic_data_dir, world_size, overrides,
                              "--parallel", "pipeline")

    expected, actual = load_run_checkpoint(expected_dir), load_run_checkpoint(actual_dir)
    assert_same_state(expected, actual, atol=1e-6)
    assert_same_metrics(expected_dir, actual_dir, 1e-6)
    manifest = json.loads((actual_dir / "pipeline.json").read_text(encoding="utf-8"))
    assert manifest["stages"] == world_size
    assert len(list((actual_dir / "checkpoints").glob("stage*-epoch*.pt"))) == world_size
    last = json.loads((actual_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    for stage in range(1, world_size + 1):
        assert 0 < last[f"pipeline/stage{stage}_busy_s"] < last["epoch_time_s"]
    assert 0 < last["pipeline/bubble_fraction"] < 1
    info = json.loads((actual_dir / "run.json").read_text(encoding="utf-8"))
    assert info["parallel"]["stages"] == world_size
    assert info["parallel"]["replicas"] == 1


# A global batch of 45 splits into shares of 23 and 22, and the last batch of 30 into 15 and 15:
# the weighted all-reduce must match the single process also for unequal shares. Summing over
# replicas rounds differently from one large reduction, hence the small tolerance.
DATA_PARALLEL_OVERRIDES = ["train.batch_size=45"]


def test_data_parallel_equals_large_batch(tmp_path, synthetic_data_dir):
    expected_dir = single_process_run(tmp_path / "single", synthetic_data_dir, DATA_PARALLEL_OVERRIDES)
    actual_dir = parallel_run(tmp_path / "data", synthetic_data_dir, 2, DATA_PARALLEL_OVERRIDES,
                              "--parallel", "data")

    assert_same_state(load_run_checkpoint(expected_dir), load_run_checkpoint(actual_dir), atol=2e-6)
    assert_same_metrics(expected_dir, actual_dir, 1e-5)


def test_pipeline_and_data_parallel_combined(tmp_path, synthetic_data_dir):
    overrides = [*DATA_PARALLEL_OVERRIDES, "negatives.kind='random'"]
    expected_dir = single_process_run(tmp_path / "single", synthetic_data_dir, overrides)
    actual_dir = parallel_run(tmp_path / "both", synthetic_data_dir, 4, overrides,
                              "--parallel", "both", "--stages", 2)

    assert_same_state(load_run_checkpoint(expected_dir), load_run_checkpoint(actual_dir), atol=2e-6)
    info = json.loads((actual_dir / "run.json").read_text(encoding="utf-8"))
    assert info["parallel"]["stages"] == 2
    assert info["parallel"]["replicas"] == 2
