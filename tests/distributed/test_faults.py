"""A dead or stalled rank ends the job with an error in time, and the job resumes where it stopped."""

import json
import os
import signal
import time

import pytest
import torch

from forwardforward.config import load_config
from forwardforward.training import evaluate_run, train

from parallel_helpers import finish, load_run_checkpoint, run_job, set_options, start_job

# 30 batches of 10 per epoch make an epoch last long enough (a few hundred milliseconds) for
# the test to act between two checkpoints.
FAULT_OVERRIDES = (
    "model.hidden=[32,32,32]",
    "train.epochs=6",
    "train.batch_size=10",
    "train.eval_every=100",
    "data.limit=300",
    "train.device='cpu'",
)
TIMEOUT_S = 20.0
STALL_TIMEOUT_S = 3.0


def job_args(run_dir, data_dir, timeout_s):
    return [*set_options(FAULT_OVERRIDES), "--data-dir", data_dir, "--out", run_dir, "--quiet",
            "--parallel", "pipeline", "--timeout", timeout_s]


def wait_for_epoch(run_dir, epoch, processes, limit_s=180.0):
    """Wait until the job has written the stage checkpoints of `epoch`.

    On a 2-core machine busy with other work, starting two ranks and finishing an epoch once
    took over a minute, so the limit is generous. The wait ends as soon as the checkpoints exist.
    """
    manifest = run_dir / "pipeline.json"
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if manifest.is_file():
            try:
                if json.loads(manifest.read_text(encoding="utf-8"))["epoch"] >= epoch:
                    return
            except (json.JSONDecodeError, KeyError):
                pass  # caught between write and rename of a temporary file
        assert all(p.poll() is None for p in processes), "a rank exited before the test could stop it"
        time.sleep(0.01)
    raise AssertionError(f"the job did not finish epoch {epoch} within {limit_s} s")


@pytest.fixture(scope="module")
def killed_job(tmp_path_factory, synthetic_data_dir):
    """A 2-stage job whose rank 1 was killed after epoch 1: rank 0's result and its exit delay."""
    run_dir = tmp_path_factory.mktemp("killed") / "run"
    processes = start_job(2, job_args(run_dir, synthetic_data_dir, TIMEOUT_S))
    wait_for_epoch(run_dir, 1, processes)
    processes[1].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    processes[0].wait(timeout=TIMEOUT_S * 3)
    delay = time.monotonic() - killed_at
    results = finish(processes)
    return run_dir, results[0], delay


def test_killed_rank_ends_job_with_error(killed_job):
    run_dir, rank0, delay = killed_job

    assert rank0.code == 1
    assert delay < TIMEOUT_S
    assert "forwardforward: error: rank 0:" in rank0.err
    assert "failed" in rank0.err
    assert f"--resume {run_dir} --parallel pipeline" in rank0.err
    assert "Traceback" not in rank0.err


def test_resume_after_kill_equals_uninterrupted(killed_job, tmp_path, synthetic_data_dir):
    run_dir, _, _ = killed_job
    stopped_at = json.loads((run_dir / "pipeline.json").read_text(encoding="utf-8"))["epoch"]
    assert 1 <= stopped_at < 6

    results = run_job(2, ["--resume", run_dir, "--quiet", "--parallel", "pipeline", "--timeout", TIMEOUT_S])
    for rank, result in enumerate(results):
        assert result.code == 0, f"rank {rank}: {result.err}"
    config = load_config("mnist-quick", list(FAULT_OVERRIDES))
    reference = train(config, out_dir=tmp_path / "single", data_dir=str(synthetic_data_dir), progress=False)

    expected, actual = load_run_checkpoint(reference.run_dir), load_run_checkpoint(run_dir)
    assert actual["epoch"] == 6
    for key, value in expected["network"].items():
        torch.testing.assert_close(actual["network"][key], value, atol=1e-6, rtol=0, msg=key)
    torch.testing.assert_close(actual["readout"]["linear.weight"], expected["readout"]["linear.weight"],
                               atol=1e-6, rtol=0)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in records] == [1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["stage0-epoch6.pt", "stage1-epoch6.pt"]

    # The merged checkpoint.pt serves a single-process evaluation like any run's.
    evaluated = evaluate_run(run_dir, data_dir=str(synthetic_data_dir))
    assert evaluated["epoch"] == 6
    assert evaluated["test/error_goodness"] == records[-1]["test/error_goodness"]
    assert evaluated["test/error_softmax"] == records[-1]["test/error_softmax"]


def test_stalled_rank_times_out(tmp_path, synthetic_data_dir):
    run_dir = tmp_path / "run"
    processes = start_job(2, job_args(run_dir, synthetic_data_dir, STALL_TIMEOUT_S))
    try:
        wait_for_epoch(run_dir, 1, processes)
        os.kill(processes[1].pid, signal.SIGSTOP)  # alive, holding its connections, but silent
        stopped_at = time.monotonic()
        processes[0].wait(timeout=STALL_TIMEOUT_S * 10)
        delay = time.monotonic() - stopped_at
    finally:
        processes[1].kill()
    rank0 = finish(processes)[0]

    assert rank0.code == 1
    assert STALL_TIMEOUT_S * 0.9 < delay < STALL_TIMEOUT_S * 5
    assert "timeout 3 s" in rank0.err
    # gloo words its own part "Timed out ..." or "Operation timed out!", by the operation.
    assert "timed out" in rank0.err.lower()


def test_parallel_without_torchrun(run_cli, tmp_path, synthetic_data_dir, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)

    result = run_cli("train", *set_options(FAULT_OVERRIDES), "--data-dir", synthetic_data_dir,
                     "--out", tmp_path / "run", "--quiet", "--parallel", "pipeline")

    assert result.code == 2
    assert "torchrun --nproc-per-node" in result.err
    assert not (tmp_path / "run").exists()


def test_stages_without_parallel(run_cli, tmp_path, synthetic_data_dir):
    result = run_cli("train", "--data-dir", synthetic_data_dir, "--out", tmp_path / "run", "--stages", "2")

    assert result.code == 2
    assert "--stages and --timeout apply only with --parallel" in result.err
