"""The Distance-Forward memory benchmark on a tiny batch."""

import pytest

from benchmarks.df_memory import measure


@pytest.mark.skipif(not __import__("pathlib").Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("method", ["backprop", "overlap"])
def test_df_memory_row_on_tiny_batch(method):
    row = measure("df-mnist", method, steps=1, batch=10, device="cpu", seed=0, threads=1)
    assert row["method"] == method
    assert row["batch"] == 10
    assert row["working_mb"] > 0
    assert row["state_mb"] > 0
    assert row["threads"] == 1
