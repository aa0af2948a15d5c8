"""Tests that a run killed at any moment and resumed ends exactly like an uninterrupted run.

The killed runs are `python -m forwardforward train` subprocesses that get SIGKILL, so nothing
in the library gets a chance to clean up, as after a power cut or the OOM killer.
"""

import json
import random
import signal
import subprocess
import time

import pytest
import torch

from forwardforward.config import load_config
from forwardforward.training import train

# The full split trains on all 10,300 synthetic images, so one epoch lasts long enough for a kill
# to land inside it (an estimated half second on one thread of a 2-core machine).
KILL_OVERRIDES = (
    "model.hidden=[32,32]",
    "train.epochs=3",
    "train.batch_size=50",
    "train.eval_batch_size=100",
    "data.split='full'",
    "train.device='cpu'",
)
TIMING_SUFFIXES = ("_time_s", "samples_per_s")
POLL_INTERVAL_S = 0.002
START_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, synthetic_data_dir):
    """Folder of the uninterrupted run that every resumed run must reproduce."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    config = load_config("mnist-quick", list(KILL_OVERRIDES))
    train(config, out_dir=run_dir, data_dir=str(synthetic_data_dir), progress=False)
    return run_dir


def read_metrics(run_dir):
    """Return the records of metrics.jsonl without the keys that measure time."""
    records = []
    for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        records.append({k: v for k, v in record.items() if not k.endswith(TIMING_SUFFIXES)})
    return records


def count_metrics_lines(run_dir):
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return 0
    return path.read_text(encoding="utf-8").count("\n")


def load_state(run_dir):
    return torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)


def assert_same_weights(run_dir, reference_dir):
    """Check that every tensor of the network and the read-out is bit for bit the same."""
    state, reference = load_state(run_dir), load_state(reference_dir)
    assert state["epoch"] == reference["epoch"]
    for part in ("network", "readout"):
        assert state[part].keys() == reference[part].keys()
        for name, tensor in reference[part].items():
            assert torch.equal(state[part][name], tensor), f"{part}.{name} differs"


def restore_default_sigint():
    """Reset SIGINT to its default action in the child, so Python raises KeyboardInterrupt.

    A shell's background job starts with SIGINT ignored and its children inherit that.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_training(cli_command, cli_env, data_dir, run_dir):
    """Start a training run with KILL_OVERRIDES in a subprocess."""
    set_options = [part for assignment in KILL_OVERRIDES for part in ("--set", assignment)]
    command = [*cli_command, "train", *set_options, "--data-dir", str(data_dir), "--out", str(run_dir), "--quiet"]
    return subprocess.Popen(
        command, env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=restore_default_sigint
    )


def wait_until(condition, process):
    """Poll `condition` until it is true. Fail when the process exits first or after START_TIMEOUT_S."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"training exited with {process.returncode} first: {process.stderr.read().decode()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"condition not met within {START_TIMEOUT_S} s")
        time.sleep(POLL_INTERVAL_S)


def kill(process):
    process.kill()
    process.wait(timeout=30)
    process.stderr.close()


def resume(cli_command, cli_env, data_dir, run_dir):
    command = [*cli_command, "train", "--resume", str(run_dir), "--data-dir", str(data_dir), "--quiet"]
    return subprocess.run(command, env=cli_env, capture_output=True, text=True, timeout=120)


def test_reference_run_complete(reference_run):
    assert [record["epoch"] for record in read_metrics(reference_run)] == [1, 2, 3]


def test_kill_mid_run_then_resume(tmp_path, synthetic_data_dir, cli_command, cli_env, reference_run):
    run_dir = tmp_path / "run"
    delay_s = random.uniform(0.0, 0.5)
    process = start_training(cli_command, cli_env, synthetic_data_dir, run_dir)

    wait_until(lambda: count_metrics_lines(run_dir) >= 1, process)
    time.sleep(delay_s)
    kill(process)

    assert process.returncode == -9, f"the run ended before the kill {delay_s:.3f} s after epoch 1"
    killed_at = load_state(run_dir)["epoch"]
    assert 1 <= killed_at < 3

    # A kill between the metrics line and the checkpoint leaves a line for an epoch that the
    # checkpoint lacks. Add such a line, plus a torn one, so that resume must drop both.
    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as metrics:
        metrics.write(json.dumps({"epoch": killed_at + 1, "layer1/loss": -1.0}) + "\n")
        metrics.write('{"epoch": 9, "layer1/lo')

    resumed = resume(cli_command, cli_env, synthetic_data_dir, run_dir)

    assert resumed.returncode == 0, resumed.stderr
    assert read_metrics(run_dir) == read_metrics(reference_run)
    assert_same_weights(run_dir, reference_run)
    last = read_metrics(reference_run)[-1]
    expected = (f"test error: goodness {last['test/error_goodness']:.2f} %, "
                f"softmax {last['test/error_softmax']:.2f} %")
    assert resumed.stdout.splitlines() == [f"run directory: {run_dir}", expected]


def test_kill_first_epoch_then_resume(tmp_path, synthetic_data_dir, cli_command, cli_env, reference_run):
    run_dir = tmp_path / "run"
    process = start_training(cli_command, cli_env, synthetic_data_dir, run_dir)

    wait_until(lambda: (run_dir / "checkpoint.pt").exists(), process)
    time.sleep(random.uniform(0.0, 0.05))
    kill(process)

    assert process.returncode == -9
    assert count_metrics_lines(run_dir) == 0, "the kill came after epoch 1 had finished"
    assert load_state(run_dir)["epoch"] == 0

    # A kill in the middle of the first append leaves a torn line without a newline.
    (run_dir / "metrics.jsonl").write_text('{"epoch": 1, "layer1/loss": 0.69', encoding="utf-8")

    resumed = resume(cli_command, cli_env, synthetic_data_dir, run_dir)

    assert resumed.returncode == 0, resumed.stderr
    assert read_metrics(run_dir) == read_metrics(reference_run)
    assert_same_weights(run_dir, reference_run)



def test_interrupt_then_resume(tmp_path, synthetic_data_dir, cli_command, cli_env, reference_run):
    run_dir = tmp_path / "run"
    process = start_training(cli_command, cli_env, synthetic_data_dir, run_dir)

    wait_until(lambda: count_metrics_lines(run_dir) >= 1, process)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    stderr = process.stderr.read().decode()
    process.stderr.close()

    assert process.returncode == 130, stderr
    assert stderr.startswith("forwardforward: error: interrupted; checkpoint.pt keeps epoch ")
    assert f"--resume {run_dir}" in stderr
    assert "Traceback" not in stderr

    resumed = resume(cli_command, cli_env, synthetic_data_dir, run_dir)

    assert resumed.returncode == 0, resumed.stderr
    assert read_metrics(run_dir) == read_metrics(reference_run)
    assert_same_weights(run_dir, reference_run)
