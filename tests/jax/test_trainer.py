"""`forwardforward train --backend jax`: run folder, metrics, checkpoints, resume and evaluate."""

import json

import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, set_options

from forwardforward.config import load_config
from forwardforward.training import evaluate_run, train

# Three epochs of two small blocks on 300 synthetic images, on the Matlab recipe's settings.
JAX_OVERRIDES = (
    "model.hidden=[32,32]",
    "train.epochs=3",
    "train.batch_size=50",
    "train.eval_batch_size=100",
    "data.limit=300",
    "train.device='cpu'",
    "train.backend='jax'",
)
TIMING_SUFFIXES = ("_time_s", "samples_per_s")


def read_metrics(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.endswith(TIMING_SUFFIXES)} for line in lines]


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory, synthetic_data_dir):
    """Folder of an uninterrupted 3-epoch JAX run on the synthetic data."""
    run_dir = tmp_path_factory.mktemp("jax") / "run"
    config = load_config("hinton-matlab-mnist", list(JAX_OVERRIDES))
    train(config, out_dir=run_dir, data_dir=str(synthetic_data_dir), progress=False)
    return run_dir


def test_cli_trains_with_jax_backend(tmp_path, synthetic_data_dir, run_cli):
    run_dir = tmp_path / "run"
    overrides = [o for o in JAX_OVERRIDES if not o.startswith("train.backend")]
    result = run_cli("train", "--recipe", "hinton-matlab-mnist", "--backend", "jax", *set_options(overrides),
                     "--data-dir", synthetic_data_dir, "--out", run_dir, "--quiet")
    assert result.code == 0, result.err
    assert "test error: goodness" in result.out
    assert json.loads((run_dir / "config.json").read_text())["train"]["backend"] == "jax"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["backend"] == "jax"
    assert "jax_version" in info


def test_jax_run_learns_and_logs_every_epoch(jax_run):
    records = read_metrics(jax_run)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    for key in ("layer1/loss", "layer2/goodness_neg", "train/readout_loss", "test/error_goodness",
                "test/error_softmax", "valid/error_layer2"):
        assert key in records[-1], key
    # Chance is 90 %; three short epochs of the read-out already reach far below it.
    assert records[-1]["test/error_softmax"] < 75.0


def test_jax_resume_matches_uninterrupted_run(tmp_path, synthetic_data_dir, jax_run):
    run_dir = tmp_path / "run"
    config = load_config("hinton-matlab-mnist", list(JAX_OVERRIDES) + ["train.epochs=3"])
    # Stop after one epoch by training a run whose loop is cut short, then resume it.
    from forwardforward.training import run as run_module

    original = run_module.build_trainer

    def build_one_epoch(*args, **kwargs):
        trainer = original(*args, **kwargs)
        trainer.train_epoch_once = trainer.train_epoch
        calls = []

        def stop_after_first(progress=True):
            if calls:
                raise KeyboardInterrupt
            calls.append(1)
            return trainer.train_epoch_once(progress)

        trainer.train_epoch = stop_after_first
        return trainer

    run_module.build_trainer = build_one_epoch
    try:
        with pytest.raises(Exception, match="checkpoint.pt keeps epoch 1"):
            train(config, out_dir=run_dir, data_dir=str(synthetic_data_dir), progress=False)
    finally:
        run_module.build_trainer = original
    train(resume=run_dir, progress=False)

    assert read_metrics(run_dir) == read_metrics(jax_run)
    ours = torch.load(run_dir / "checkpoint.pt", weights_only=True)["jax_state"]
    reference = torch.load(jax_run / "checkpoint.pt", weights_only=True)["jax_state"]
    assert len(ours) == len(reference)
    for a, b in zip(ours, reference):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_evaluate_reads_jax_checkpoint(jax_run, synthetic_data_dir):
    result = evaluate_run(jax_run, data_dir=str(synthetic_data_dir))
    last = read_metrics(jax_run)[-1]
    assert result["epoch"] == 3
    assert result["test/error_goodness"] == last["test/error_goodness"]
    assert result["test/error_softmax"] == last["test/error_softmax"]


def test_backend_conflicts_with_resume(jax_run, run_cli):
    result = run_cli("train", "--resume", jax_run, "--backend", "jax")
    assert result.code == 2
    assert "--backend" in result.err


def test_jax_backend_rejects_greedy_schedule(tmp_path, synthetic_data_dir, run_cli):
    result = run_cli("train", *set_options(JAX_OVERRIDES), "--set", "train.schedule='greedy'",
                     "--data-dir", synthetic_data_dir, "--out", tmp_path / "run", "--quiet")
    assert_one_line_error(result, 2)
    assert "simultaneous" in result.err
    assert not (tmp_path / "run").exists()


def test_torch_checkpoint_refused_by_jax_trainer(tiny_run, synthetic_data_dir):
    from forwardforward.jax.trainer import JaxTrainer
    from forwardforward.training.run import load_training_data

    config = load_config("mnist-quick", [o for o in JAX_OVERRIDES if "hidden" not in o] + ["model.hidden=[32,32]"])
    data = load_training_data(config, str(synthetic_data_dir), torch.device("cpu"))
    trainer = JaxTrainer(config, data, "cpu")
    state = torch.load(tiny_run / "checkpoint.pt", weights_only=True)
    with pytest.raises(ValueError, match="PyTorch backend"):
        trainer.load_state_dict(state)


def test_resolve_jax_device_names():
    import jax

    from forwardforward.errors import UsageError
    from forwardforward.jax.trainer import resolve_jax_device

    assert resolve_jax_device("cpu").platform == "cpu"
    with pytest.raises(UsageError, match="invalid device"):
        resolve_jax_device("tpu:x")
    if not any(d.platform == "gpu" for d in jax.devices()):
        with pytest.raises(UsageError, match="no GPU"):
            resolve_jax_device("cuda")


def test_cli_evaluates_jax_run(jax_run, synthetic_data_dir, run_cli):
    result = run_cli("evaluate", jax_run, "--json", "--data-dir", synthetic_data_dir)
    assert result.code == 0, result.err
    assert json.loads(result.out)["epoch"] == 3
