"""The benchmark suite's own parts: FLOP counts, the memory probe and the result files."""

import json

import pytest

from benchmarks.common import Gemm, ff_training_gemms, markdown_table, write_results
from benchmarks.memory_vs_depth import measure


def test_training_gemms_count_by_hand():
    gemms = ff_training_gemms(784, [1000, 1000, 1000], batch=100, num_classes=10, skip_first=1)
    per_row = 784 * 1000 + 1000 * 1000 + 1000 * 1000
    # neutral pass (1 row), positive + negative pass (2 rows), weight gradient (2 rows),
    # read-out forward and weight gradient on 2000 features.
    expected = 2 * 100 * (5 * per_row + 2 * 2000 * 10)
    assert sum(g.flops for g in gemms) == expected
    assert Gemm(200, 784, 1000, "x") in [Gemm(g.m, g.k, g.n, "x") for g in gemms]


def test_training_gemms_without_readout():
    gemms = ff_training_gemms(10, [4], batch=3, readout=False)
    assert [(g.m, g.k, g.n) for g in gemms] == [(6, 10, 4), (4, 6, 10)]


def test_write_results_writes_json_and_table(tmp_path, capsys):
    rows = [{"name": "a", "value": 1.23456}, {"name": "b", "value": 12345.6}]
    path = write_results("demo", rows, tmp_path, ["name", "value"])
    assert json.loads(path.read_text()) == rows
    printed = capsys.readouterr().out
    assert "| a | 1.23 |" in printed
    assert "| b | 12,346 |" in printed
    assert markdown_table(rows, ["name"]).splitlines()[1] == "|---|"


@pytest.mark.skipif(not __import__("pathlib").Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("method", ["ff", "backprop"])
def test_memory_probe_on_tiny_network(method):
    row = measure(method, depth=2, width=64, batch=50, steps=1, device="cpu", seed=0, threads=1)
    params = (784 * 64 + 64) + (64 * 64 + 64) + (0 if method == "ff" else 64 * 10 + 10)
    # weights plus one smoothed-gradient buffer per parameter tensor
    assert row["state_mb"] * 2**20 == pytest.approx(2 * 4 * params)
    assert row["working_mb"] > 0
    assert row["method"] == method
    assert row["threads"] == 1
