"""End-to-end training on a slice of the real MNIST files, when a data folder provides them."""

import json
import os
from pathlib import Path

import pytest

DATA_DIR = os.environ.get("FORWARDFORWARD_DATA", "")

pytestmark = pytest.mark.skipif(
    not DATA_DIR or not (Path(DATA_DIR) / "mnist").is_dir(),
    reason="set FORWARDFORWARD_DATA to a folder whose mnist/ contains the four MNIST files",
)


def test_real_mnist_slice_learns(run_cli, tmp_path):
    run_dir = tmp_path / "run"
    # 300 steps of batch 100; chance is 90 % error. Measured with one thread: 14.8 % by goodness
    # and 9.2 % by softmax.
    settings = ["data.limit=10000", "model.hidden=[200,200]", "train.epochs=3", "train.skip_first=0",
                "train.device='cpu'"]
    set_options = [part for assignment in settings for part in ("--set", assignment)]

    result = run_cli("train", *set_options, "--data-dir", DATA_DIR, "--out", run_dir, "--quiet")

    assert result.code == 0, result.err
    last = json.loads((run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert last["test/error_goodness"] < 25.0
    assert last["test/error_softmax"] < 15.0
    assert result.out.splitlines()[-1].startswith("test error: goodness ")
