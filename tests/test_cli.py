"""Tests of the `forwardforward` command line: bad input, missing or corrupt data, output."""

import dataclasses
import json
import subprocess

import numpy as np
import pytest
import torch

import forwardforward
from forwardforward.data import write_idx

from cli_helpers import assert_one_line_error, set_options


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--recipe", "no-such-recipe"], "unknown recipe 'no-such-recipe'"),
        (["--set", "nope.x=1"], "unknown recipe key 'nope'"),
        (["--set", "train.nope=1"], "unknown recipe key 'train.nope'"),
        (["--set", "train.epochs=abc"], "train.epochs must be an integer"),
        (["--set", "train.epochs=0"], "train.epochs must be positive"),
        (["--set", "optimizer.lr=-1"], "optimizer.lr must not be negative"),
        (["--set", "negatives.kind=x"], "negatives.kind = 'x' is not valid"),
        (["--set", "model.hidden=32"], "model.hidden must be a list"),
        (["--set", "model.hidden=[32]"], "train.skip_first = 1 leaves no layer"),
        (["--set", "train.epochs"], "--set expects KEY=VALUE"),
        (["--set", "train.epochs.x=1"], "'epochs' is a value, not a table"),
    ],
)
def test_train_bad_setting(run_cli, tmp_path, synthetic_data_dir, options, expected):
    run_dir = tmp_path / "run"
    result = run_cli("train", *options, "--data-dir", synthetic_data_dir, "--out", run_dir, "--quiet")

    assert_one_line_error(result, 2)
    assert expected in result.err
    assert not run_dir.exists()


def test_train_recipe_file_invalid_toml(run_cli, tmp_path, synthetic_data_dir):
    recipe = tmp_path / "broken.toml"
    recipe.write_text("[train\nepochs = 3\n", encoding="utf-8")

    result = run_cli("train", "--recipe", recipe, "--data-dir", synthetic_data_dir,
                     "--out", tmp_path / "run", "--quiet")

    assert_one_line_error(result, 2)
    assert "is not valid TOML" in result.err


def test_train_recipe_file_missing(run_cli, tmp_path, synthetic_data_dir):
    result = run_cli("train", "--recipe", tmp_path / "absent.toml", "--data-dir", synthetic_data_dir,
                     "--out", tmp_path / "run", "--quiet")

    assert_one_line_error(result, 2)
    assert "recipe file not found" in result.err


def test_train_recipe_file_used(run_cli, tmp_path, synthetic_data_dir, tiny_overrides):
    recipe = tmp_path / "mine.toml"
    recipe.write_text('[model]\nhidden = [16, 16]\n[negatives]\nkind = "random"\n', encoding="utf-8")
    run_dir = tmp_path / "run"

    result = run_cli("train", "--recipe", recipe, *set_options(tiny_overrides[1:]),
                     "--data-dir", synthetic_data_dir, "--out", run_dir, "--quiet")

    assert result.code == 0, result.err
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    assert config["name"] == "mine"
    assert config["model"]["hidden"] == [16, 16]
    assert config["negatives"]["kind"] == "random"


def test_train_epochs_and_seed_options(run_cli, tmp_path, synthetic_data_dir, tiny_overrides):
    run_dir = tmp_path / "run"

    result = run_cli("train", *set_options(tiny_overrides), "--epochs", "2", "--seed", "5",
                     "--data-dir", synthetic_data_dir, "--out", run_dir, "--quiet")

    assert result.code == 0, result.err
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    assert config["train"]["epochs"] == 2
    assert config["train"]["seed"] == 5


def test_train_no_command(run_cli):
    result = run_cli()

    assert result.code == 2
    assert "Traceback" not in result.err


def test_train_device_option_invalid(run_cli, tmp_path, synthetic_data_dir):
    result = run_cli("train", "--device", "tpu", "--data-dir", synthetic_data_dir, "--out", tmp_path / "run")

    assert result.code == 2
    assert "invalid choice: 'tpu'" in result.err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is missing")
def test_train_cuda_unavailable(run_cli, tmp_path, synthetic_data_dir, tiny_overrides):
    run_dir = tmp_path / "run"

    result = run_cli("train", *set_options(tiny_overrides), "--device", "cuda",
                     "--data-dir", synthetic_data_dir, "--out", run_dir, "--quiet")

    assert_one_line_error(result, 2)
    assert "CUDA is not available" in result.err
    assert not run_dir.exists()


def test_train_data_missing(run_cli, tmp_path, tiny_overrides):
    data_dir = tmp_path / "empty"
    data_dir.mkdir()
    run_dir = tmp_path / "run"

    result = run_cli("train", *set_options(tiny_overrides), "--data-dir", data_dir, "--out", run_dir, "--quiet")

    assert_one_line_error(result, 1)
    assert str(data_dir / "mnist") in result.err
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert stem in result.err
    assert "FORWARDFORWARD_OFFLINE" in result.err
    assert not run_dir.exists()


def test_train_idx_truncated(run_cli, tmp_path, writable_data_dir, tiny_overrides):
    damaged = writable_data_dir / "mnist" / "t10k-images-idx3-ubyte"
    content = damaged.read_bytes()
    damaged.write_bytes(content[: len(content) - 100])

    result = run_cli("train", *set_options(tiny_overrides), "--data-dir", writable_data_dir,
                     "--out", tmp_path / "run", "--quiet")

    assert_one_line_error(result, 1)
    assert str(damaged) in result.err
    assert "truncated" in result.err


def test_train_labels_out_of_range(run_cli, tmp_path, writable_data_dir, tiny_overrides):
    labels_path = writable_data_dir / "mnist" / "t10k-labels-idx1-ubyte"
    labels = np.zeros(300, dtype=np.uint8)
    labels[7] = 10
    write_idx(labels_path, labels)

    result = run_cli("train", *set_options(tiny_overrides), "--data-dir", writable_data_dir,
                     "--out", tmp_path / "run", "--quiet")

    assert_one_line_error(result, 1)
    assert str(labels_path) in result.err
    assert "label 10 at index 7" in result.err


def test_train_output_lines(run_cli, tmp_path, synthetic_data_dir, tiny_overrides):
    run_dir = tmp_path / "run"

    result = run_cli("train", *set_options(tiny_overrides), "--data-dir", synthetic_data_dir,
                     "--out", run_dir, "--quiet")

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == f"run directory: {run_dir}"
    assert lines[-1].startswith("test error: ")
    assert "goodness" in lines[-1]
    assert "softmax" in lines[-1]


def test_train_output_matches_metrics(run_cli, tmp_path, synthetic_data_dir, tiny_overrides):
    run_dir = tmp_path / "run"

    result = run_cli("train", *set_options(tiny_overrides), "--data-dir", synthetic_data_dir,
                     "--out", run_dir, "--quiet")

    last = json.loads((run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    expected = (f"test error: goodness {last['test/error_goodness']:.2f} %, "
                f"softmax {last['test/error_softmax']:.2f} %")
    assert result.out.splitlines()[-1] == expected


def test_train_readout_disabled_output(run_cli, tmp_path, synthetic_data_dir, tiny_overrides):
    run_dir = tmp_path / "run"

    result = run_cli("train", *set_options(tiny_overrides), "--set", "readout.enabled=false",
                     "--set", "negatives.kind='random'", "--data-dir", synthetic_data_dir,
                     "--out", run_dir, "--quiet")

    assert result.code == 0, result.err
    assert result.out.splitlines()[-1].startswith("test error: goodness ")
    assert "softmax" not in result.out


def test_evaluate_json(run_cli, tiny_run, synthetic_data_dir):
    last = json.loads((tiny_run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[-1])

    result = run_cli("evaluate", tiny_run, "--json", "--data-dir", synthetic_data_dir)

    assert result.code == 0, result.err
    assert len(result.out.splitlines()) == 1
    summary = json.loads(result.out)
    assert summary["epoch"] == 3
    assert summary["test_error_goodness"] == last["test/error_goodness"]
    assert summary["test_error_softmax"] == last["test/error_softmax"]
    assert summary["valid_error_goodness"] == last["valid/error_goodness"]


def test_evaluate_text(run_cli, tiny_run, synthetic_data_dir):
    result = run_cli("evaluate", tiny_run, "--data-dir", synthetic_data_dir)

    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == f"run {tiny_run} after epoch 3 (errors in %)"
    assert "test/error_goodness" in result.out


def test_evaluate_missing_run(run_cli, tmp_path, synthetic_data_dir):
    result = run_cli("evaluate", tmp_path / "absent", "--data-dir", synthetic_data_dir)

    assert_one_line_error(result, 2)
    assert "run directory not found" in result.err


def test_evaluate_data_missing(run_cli, tiny_run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()

    result = run_cli("evaluate", tiny_run, "--data-dir", empty)

    assert_one_line_error(result, 1)
    assert str(empty / "mnist") in result.err


def test_recipes_lists_shipped(run_cli):
    result = run_cli("recipes")

    assert result.code == 0, result.err
    names = [line for line in result.out.splitlines() if line and not line.startswith(" ")]
    assert names == sorted(names)
    assert {"hinton-matlab-mnist", "hinton-mnist-4x2000", "mnist-quick"} <= set(names)
    assert {"hinton-mnist-unsupervised", "hinton-mnist-local", "hinton-mnist-recurrent",
            "hinton-mnist-jitter", "hinton-cifar10-2layer-maxssq"} <= set(names)
    assert {"ff-cnn-cifar10", "vff-cifar10", "vff-cifar10-backprop", "vff-fashion-mnist", "vff-mnist-fc",
            "vff-mnist-fc-backprop", "mnist-fast"} <= set(names)
    assert {"ff-negatives-mnist", "scff-cifar10", "scff-mnist", "scff-seqmnist"} <= set(names)


def test_version_module_run(cli_command, cli_env):
    completed = subprocess.run([*cli_command, "--version"], env=cli_env, capture_output=True,
                               text=True, timeout=60)

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == f"forwardforward {forwardforward.__version__}"


def test_bad_setting_subprocess(cli_command, cli_env, tmp_path):
    completed = subprocess.run(
        [*cli_command, "train", "--set", "train.epochs=abc", "--out", str(tmp_path / "run")],
        env=cli_env, capture_output=True, text=True, timeout=60,
    )

    assert completed.returncode == 2
    assert completed.stderr == "forwardforward: error: train.epochs must be an integer, got 'abc'\n"


def test_train_data_dir_not_found(run_cli, tmp_path, tiny_overrides):
    absent = tmp_path / "no-such-folder"

    result = run_cli("train", *set_options(tiny_overrides), "--data-dir", absent, "--out", tmp_path / "run", "--quiet")

    assert_one_line_error(result, 2)
    assert f"data folder not found: {absent}" in result.err
    assert not absent.exists()


def test_train_out_is_a_file(run_cli, tmp_path, synthetic_data_dir, tiny_overrides):
    target = tmp_path / "a-file"
    target.write_text("not a folder")

    result = run_cli("train", *set_options(tiny_overrides), "--data-dir", synthetic_data_dir, "--out", target, "--quiet")

    assert_one_line_error(result, 2)
    assert "is not a directory" in result.err
    assert target.read_text() == "not a folder"


def test_evaluate_uses_recorded_data_dir(run_cli, tiny_run, monkeypatch, tmp_path):
    # Without --data-dir, and with the usual places empty, the run's own data folder is used.
    monkeypatch.delenv("FORWARDFORWARD_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))

    result = run_cli("evaluate", tiny_run, "--json")

    assert result.code == 0, result.err
    assert "test_error_goodness" in json.loads(result.out)


def test_download_failure_names_all_files(run_cli, tmp_path, tiny_overrides, monkeypatch):
    # Mirrors that refuse connections stand in for a machine without network access.
    import forwardforward.data.datasets as datasets

    refused = dataclasses.replace(datasets.MNIST, mirrors=("http://127.0.0.1:9/",))
    monkeypatch.setitem(datasets.DATASETS, "mnist", refused)
    monkeypatch.delenv("FORWARDFORWARD_OFFLINE")
    data_dir = tmp_path / "data"
    data_dir.mkdir()

    result = run_cli("train", *set_options(tiny_overrides), "--data-dir", data_dir, "--out", tmp_path / "run", "--quiet")

    assert_one_line_error(result, 1)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert stem in result.err
    assert "--data-dir" in result.err
    assert "127.0.0.1:9" in result.err
