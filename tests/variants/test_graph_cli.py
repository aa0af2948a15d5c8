"""`forwardforward graph` end to end on a hand-made Planetoid folder."""

import json

import pytest

pytest.importorskip("torch_geometric")
pytest.importorskip("scipy")
from cli_helpers import assert_one_line_error
from graph_helpers import write_planetoid

SHORT = ["--set", "hidden=16", "--set", "max_epochs=8", "--set", "patience=4", "--quiet"]


@pytest.fixture
def graph_data_dir(tmp_path):
    """Data folder whose planetoid/raw contains a hand-made cora and a pubmed without allx."""
    raw = tmp_path / "data" / "planetoid" / "raw"
    write_planetoid(raw, name="cora")
    write_planetoid(raw, name="pubmed", skip=("allx",))
    return tmp_path / "data"


def test_node_run_prints_depths_and_writes_files(run_cli, graph_data_dir, tmp_path):
    out = tmp_path / "run"
    result = run_cli("graph", "node", "--data-dir", graph_data_dir, "--layers", "2", "--seeds", "0,1",
                     "--out", out, *SHORT)
    assert result.code == 0, result.err
    assert "cora node single-forward gcn, seeds 0,1: test accuracy (%)" in result.out
    assert "1 layer " in result.out
    assert "2 layers" in result.out
    assert "(2 seeds)" in result.out
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in records] == [0, 1]
    assert [d["depth"] for d in records[0]["depths"]] == [1, 2]
    assert (out / "metrics.jsonl").stat().st_size > 0
    assert json.loads((out / "config.json").read_text())["config"]["hidden"] == 16
    assert "git_commit" in json.loads((out / "run.json").read_text())


def test_rerun_skips_finished_seeds(run_cli, graph_data_dir, tmp_path):
    out = tmp_path / "run"
    args = ("graph", "link", "--method", "backprop", "--data-dir", graph_data_dir, "--layers", "1", "--out", out)
    assert run_cli(*args, "--seeds", "0", *SHORT).code == 0
    first = (out / "results.jsonl").read_text()
    again = run_cli(*args, "--seeds", "0,1", *SHORT)
    assert again.code == 0, again.err
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert lines[0] + "\n" == first  # seed 0 was not trained again
    assert "ROC-AUC" in again.out


def test_other_settings_in_same_directory_rejected(run_cli, graph_data_dir, tmp_path):
    out = tmp_path / "run"
    assert run_cli("graph", "node", "--data-dir", graph_data_dir, "--layers", "1", "--out", out, *SHORT).code == 0
    result = run_cli("graph", "node", "--data-dir", graph_data_dir, "--layers", "2", "--out", out, *SHORT)
    assert_one_line_error(result, 2)
    assert "contains a run with other settings" in result.err


def test_missing_raw_file_is_one_line_error(run_cli, graph_data_dir, tmp_path):
    result = run_cli("graph", "node", "--dataset", "pubmed", "--data-dir", graph_data_dir,
                     "--out", tmp_path / "run", *SHORT)
    assert_one_line_error(result, 1)
    assert "ind.pubmed.allx" in result.err


@pytest.mark.parametrize("options, message", [
    (["--method", "magic"], "unknown node method 'magic'"),
    (["--set", "speed=3"], "unknown graph setting 'speed'"),
    (["--set", "hidden=wide"], "invalid value 'wide' for hidden"),
    (["--set", "conv"], "expects KEY=VALUE"),
    (["--seeds", "a,b"], "comma-separated integers"),
    (["--layers", "0"], "at least 1"),
])
def test_bad_options_rejected(run_cli, graph_data_dir, tmp_path, options, message):
    result = run_cli("graph", "node", "--data-dir", graph_data_dir, "--out", tmp_path / "run", *options)
    assert_one_line_error(result, 2)
    assert message in result.err
