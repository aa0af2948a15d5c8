"""Tests of run directories: the files a run writes and the guards of --out and --resume."""

import json

import pytest
import torch

import forwardforward
from forwardforward.config import config_from_dict, load_config
from forwardforward.errors import UsageError
from forwardforward.training import train

from cli_helpers import assert_one_line_error, set_options


def test_config_json_round_trip(tmp_path, synthetic_data_dir, tiny_overrides):
    config = load_config("mnist-quick", tiny_overrides)
    run_dir = tmp_path / "run"

    train(config, out_dir=run_dir, data_dir=str(synthetic_data_dir), progress=False)

    values = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    assert config_from_dict(values) == config


def test_run_json_keys(tiny_run):
    info = json.loads((tiny_run / "run.json").read_text(encoding="utf-8"))

    assert info["forwardforward_version"] == forwardforward.__version__
    assert info["torch_version"] == torch.__version__
    assert info["device"] == "cpu"
    assert "python_version" in info
    assert "started" in info


def test_run_files_present(tiny_run):
    names = sorted(path.name for path in tiny_run.iterdir())

    assert names == ["checkpoint.pt", "config.json", "goodness_histograms.jsonl", "metrics.jsonl", "run.json"]


def test_metrics_one_line_per_epoch(tiny_run):
    records = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]

    assert [record["epoch"] for record in records] == [1, 2, 3]


def test_out_existing_run(run_cli, tiny_run, synthetic_data_dir, tiny_overrides):
    before = (tiny_run / "metrics.jsonl").read_bytes()

    result = run_cli("train", *set_options(tiny_overrides), "--data-dir", synthetic_data_dir,
                     "--out", tiny_run, "--quiet")

    assert_one_line_error(result, 2)
    assert f"--resume {tiny_run}" in result.err
    assert (tiny_run / "metrics.jsonl").read_bytes() == before


def test_out_existing_empty_folder(run_cli, tmp_path, synthetic_data_dir, tiny_overrides):
    run_dir = tmp_path / "made-in-advance"
    run_dir.mkdir()

    result = run_cli("train", *set_options(tiny_overrides), "--data-dir", synthetic_data_dir,
                     "--out", run_dir, "--quiet")

    assert result.code == 0, result.err
    assert (run_dir / "checkpoint.pt").is_file()


def test_resume_missing_folder(run_cli, tmp_path, synthetic_data_dir):
    missing = tmp_path / "absent"

    result = run_cli("train", "--resume", missing, "--data-dir", synthetic_data_dir, "--quiet")

    assert_one_line_error(result, 2)
    assert f"run directory not found: {missing}" in result.err


def test_resume_foreign_folder(run_cli, tmp_path, synthetic_data_dir):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"\xff\xd8\xff")

    result = run_cli("train", "--resume", foreign, "--data-dir", synthetic_data_dir, "--quiet")

    assert_one_line_error(result, 2)
    assert "no config.json" in result.err


def test_resume_config_not_json(run_cli, tiny_run, synthetic_data_dir):
    (tiny_run / "config.json").write_text("{not json", encoding="utf-8")

    result = run_cli("train", "--resume", tiny_run, "--data-dir", synthetic_data_dir, "--quiet")

    assert_one_line_error(result, 2)
    assert "is not valid JSON" in result.err


def test_resume_garbage_checkpoint(run_cli, tiny_run, synthetic_data_dir):
    (tiny_run / "checkpoint.pt").write_bytes(b"this is not a checkpoint" * 10)

    result = run_cli("train", "--resume", tiny_run, "--data-dir", synthetic_data_dir, "--quiet")

    assert_one_line_error(result, 2)
    assert "cannot read checkpoint" in result.err


def test_resume_without_checkpoint(run_cli, tiny_run, synthetic_data_dir):
    (tiny_run / "checkpoint.pt").unlink()

    result = run_cli("train", "--resume", tiny_run, "--data-dir", synthetic_data_dir, "--quiet")

    assert_one_line_error(result, 2)
    assert "has no checkpoint.pt" in result.err


def test_resume_checkpoint_other_shape(run_cli, tmp_path, tiny_run, synthetic_data_dir, tiny_overrides):
    other = tmp_path / "other"
    config = load_config("mnist-quick", [*tiny_overrides, "model.hidden=[16,16]"])
    train(config, out_dir=other, data_dir=str(synthetic_data_dir), progress=False)
    (tiny_run / "checkpoint.pt").write_bytes((other / "checkpoint.pt").read_bytes())

    result = run_cli("train", "--resume", tiny_run, "--data-dir", synthetic_data_dir, "--quiet")

    assert_one_line_error(result, 2)
    assert "does not match this run's configuration" in result.err


@pytest.mark.parametrize(
    "options",
    [["--recipe", "mnist-quick"], ["--set", "train.epochs=5"], ["--epochs", "5"], ["--seed", "3"], ["--out", "x"]],
)
def test_resume_with_new_settings(run_cli, tiny_run, synthetic_data_dir, options):
    result = run_cli("train", "--resume", tiny_run, *options, "--data-dir", synthetic_data_dir, "--quiet")

    assert result.code == 2
    assert f"drop {options[0]}" in result.err
    assert "Traceback" not in result.err


def test_resume_with_seed_zero(run_cli, tiny_run, synthetic_data_dir):
    result = run_cli("train", "--resume", tiny_run, "--seed", "0", "--data-dir", synthetic_data_dir, "--quiet")

    assert result.code == 2


def test_resume_finished_run(run_cli, tiny_run, synthetic_data_dir):
    metrics_before = (tiny_run / "metrics.jsonl").read_bytes()
    checkpoint_before = (tiny_run / "checkpoint.pt").read_bytes()

    result = run_cli("train", "--resume", tiny_run, "--data-dir", synthetic_data_dir, "--quiet")

    assert result.code == 0, result.err
    assert result.out.splitlines()[-1].startswith("test error: goodness ")
    assert (tiny_run / "metrics.jsonl").read_bytes() == metrics_before
    assert (tiny_run / "checkpoint.pt").read_bytes() == checkpoint_before


def test_train_without_config(tmp_path):
    with pytest.raises(UsageError, match="needs a config"):
        train(out_dir=tmp_path / "run", progress=False)


def test_rejected_settings_leave_no_run(run_cli, tmp_path, synthetic_data_dir, tiny_overrides):
    run_dir = tmp_path / "run"
    rejected = run_cli("train", *set_options(tiny_overrides), "--set", "readout.enabled=false",
                       "--data-dir", synthetic_data_dir, "--out", run_dir, "--quiet")
    assert rejected.code == 2, rejected.err

    retried = run_cli("train", *set_options(tiny_overrides), "--set", "readout.enabled=false",
                      "--set", "negatives.kind='random'", "--data-dir", synthetic_data_dir,
                      "--out", run_dir, "--quiet")

    assert retried.code == 0, retried.err
