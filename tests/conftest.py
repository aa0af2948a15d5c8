"""Shared fixtures: offline mode, one CPU thread and a small, learnable MNIST-shaped data set."""

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from forwardforward.cli import main
from forwardforward.data import write_idx

torch.set_num_threads(1)

# split="hinton" keeps the last 10,000 training images for validation and needs more than
# 10,000, so the training file contains 10,300: 300 for training and 10,000 for validation.
SYNTHETIC_TRAIN_COUNT = 10_300
SYNTHETIC_TEST_COUNT = 300
MNIST_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

from tiny_settings import TINY_OVERRIDES  # noqa: F401  (re-exported for older imports)


def make_synthetic_mnist(count, seed):
    """Return uint8 images (count, 28, 28) and uint8 labels whose class sets a bright 7x7 block.

    Class c lights the block at row 7 + 7 * (c // 4), column 7 * (c % 4), below the first row
    where the label pixels go. The rest is uniform noise in [0, 100), so a small network
    separates the classes within a few epochs.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count).astype(np.uint8)
    images = rng.integers(0, 100, size=(count, 28, 28), dtype=np.uint8)
    for label in range(10):
        row, column = 7 + 7 * (label // 4), 7 * (label % 4)
        images[labels == label, row : row + 7, column : column + 7] = 255
    return images, labels


def write_synthetic_mnist(data_dir):
    """Write the four raw MNIST files of the synthetic data set into `data_dir`/mnist."""
    folder = data_dir / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = make_synthetic_mnist(SYNTHETIC_TRAIN_COUNT, seed=1)
    test_images, test_labels = make_synthetic_mnist(SYNTHETIC_TEST_COUNT, seed=2)
    arrays = (train_images, train_labels, test_images, test_labels)
    for stem, array in zip(MNIST_STEMS, arrays):
        write_idx(folder / stem, array)
    return data_dir


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory):
    """Data folder whose mnist/ contains the synthetic data set. All tests share it, so never modify it."""
    return write_synthetic_mnist(tmp_path_factory.mktemp("synthetic-data"))


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Block downloads in every test. A test that needs them must delete the variable itself."""
    monkeypatch.setenv("FORWARDFORWARD_OFFLINE", "1")


@pytest.fixture
def cli_env():
    """Environment of a `python -m forwardforward` subprocess: offline, one thread, no data folder."""
    env = dict(os.environ)
    env["FORWARDFORWARD_OFFLINE"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    env.pop("FORWARDFORWARD_DATA", None)
    return env


@pytest.fixture
def cli_command():
    """Start of the argument list that runs the command line in a fresh interpreter."""
    return [sys.executable, "-m", "forwardforward"]


@pytest.fixture
def tiny_overrides():
    """`--set` assignments for a run of 3 epochs on 300 samples with two layers of 32 units."""
    return list(TINY_OVERRIDES)


@dataclass
class CliResult:
    """Exit status and captured output of one command line call."""

    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys):
    """Function that runs `forwardforward ARGS...` in this process and returns a CliResult.

    argparse reports usage errors by raising SystemExit, whose code becomes the exit status.
    """

    def run(*argv):
        capsys.readouterr()
        try:
            code = main([str(arg) for arg in argv])
        except SystemExit as exc:
            code = exc.code
        captured = capsys.readouterr()
        return CliResult(code=code, out=captured.out, err=captured.err)

    return run


@pytest.fixture
def tiny_run(tmp_path, synthetic_data_dir, run_cli):
    """Folder of a finished 3-epoch run on the synthetic data, trained through the command line."""
    run_dir = tmp_path / "run"
    set_options = [part for assignment in TINY_OVERRIDES for part in ("--set", assignment)]
    result = run_cli("train", *set_options, "--data-dir", synthetic_data_dir, "--out", run_dir, "--quiet")
    assert result.code == 0, result.err
    return run_dir


@pytest.fixture
def writable_data_dir(tmp_path, synthetic_data_dir):
    """A private copy of the synthetic data folder that a test may damage."""
    return Path(shutil.copytree(synthetic_data_dir, tmp_path / "data"))
