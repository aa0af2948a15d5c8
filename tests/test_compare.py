"""Tests of `forwardforward compare`: the table and the JSON of two runs, and its guards."""

import json
import shutil

import pytest

from forwardforward.compare import compare_runs, flatten_settings, format_comparison
from forwardforward.config import load_config
from forwardforward.training import train

from cli_helpers import assert_one_line_error
from tiny_settings import TINY_OVERRIDES


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, synthetic_data_dir):
    """Two finished runs that differ in seed and in the width of their layers."""
    root = tmp_path_factory.mktemp("compare")
    runs = []
    for name, extra in (("a", ["train.seed=1"]), ("b", ["train.seed=2", "model.hidden=[24,24]"])):
        run_dir = root / name
        config = load_config("mnist-quick", [*TINY_OVERRIDES, *extra])
        train(config, out_dir=run_dir, data_dir=str(synthetic_data_dir), progress=False)
        runs.append(run_dir)
    return runs


def test_flatten_settings():
    assert flatten_settings({"a": 1, "b": {"c": [2, 3], "d": {"e": None}}}) == {"a": 1, "b.c": [2, 3], "b.d.e": None}


def test_json_of_two_runs(run_cli, two_runs):
    result = run_cli("compare", *two_runs, "--json")

    assert result.code == 0, result.err
    comparison = json.loads(result.out)
    assert comparison["differing_settings"] == ["model.hidden", "train.seed"]
    assert [run["run_dir"] for run in comparison["runs"]] == [str(path) for path in two_runs]
    for run, run_dir in zip(comparison["runs"], two_runs):
        records = read_metrics(run_dir)
        assert run["recipe"] == "mnist-quick"
        assert run["epochs"] == 3
        assert run["planned_epochs"] == 3
        for method in ("goodness", "softmax"):
            errors = [r[f"test/error_{method}"] for r in records if f"test/error_{method}" in r]
            assert run["test_error"][method]["final"] == errors[-1]
            assert run["test_error"][method]["best"] == min(errors)
        expected_time = sum(r["epoch_time_s"] + r.get("eval_time_s", 0.0) for r in records)
        assert run["wall_time_s"] == pytest.approx(expected_time)
        assert run["samples_per_s"] > 0
    assert comparison["runs"][1]["settings"] == {"model.hidden": [24, 24], "train.seed": 2}


def test_table_of_two_runs(run_cli, two_runs):
    result = run_cli("compare", *two_runs)

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    header = lines[0].split()
    for column in ("run", "recipe", "model.hidden", "train.seed", "epochs", "samples/s"):
        assert column in header
    assert len(lines) == 5  # header, rule, two runs, the list of differing settings
    assert lines[2].startswith(str(two_runs[0]))
    assert "[24,24]" in lines[3]
    assert "3/3" in lines[2]
    final = read_metrics(two_runs[1])[-1]["test/error_goodness"]
    assert f"{final:.2f}" in lines[3]
    assert lines[4] == "settings that differ: model.hidden, train.seed"


def test_same_run_twice(two_runs):
    comparison = compare_runs([two_runs[0], two_runs[0]])

    assert comparison["differing_settings"] == []
    assert format_comparison(comparison).splitlines()[-1] == "settings that differ: none"


def test_unfinished_run(two_runs, tmp_path):
    run_dir = shutil.copytree(two_runs[0], tmp_path / "unfinished")
    records = read_metrics(run_dir)[:1]  # stopped after epoch 1, before any evaluation
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")

    run = compare_runs([run_dir])["runs"][0]

    assert run["epochs"] == 1
    assert run["test_error"] == {}
    assert "1/3" in format_comparison(compare_runs([run_dir]))


def test_not_a_run(run_cli, two_runs, tmp_path):
    result = run_cli("compare", two_runs[0], tmp_path)

    assert_one_line_error(result, 2)
    assert "contains no forwardforward run" in result.err


def test_needs_a_run_dir(run_cli):
    result = run_cli("compare")

    assert result.code == 2
    assert "RUN_DIR" in result.err
