"""Tests of the CIFAR-10 binary reader: layout, splits, limits and corrupt files."""

import gzip
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from forwardforward.data import load_dataset
from forwardforward.data.cifar10 import load_cifar10, read_cifar10_batch
from forwardforward.errors import DataError, UsageError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "variants"))
from cifar_helpers import make_synthetic_cifar, write_synthetic_cifar  # noqa: E402


def test_batch_layout_label_then_planes(tmp_path):
    record = np.zeros((1, 3073), dtype=np.uint8)
    record[0, 0] = 7
    record[0, 1] = 11                   # red, top-left pixel
    record[0, 1 + 1024 + 33] = 22       # green, row 1, column 1
    record[0, 1 + 2048 + 1023] = 33     # blue, bottom-right pixel
    path = tmp_path / "one.bin"
    path.write_bytes(record.tobytes())
    images, labels = read_cifar10_batch(path)
    assert labels.tolist() == [7]
    assert images.shape == (1, 3, 32, 32)
    assert (images[0, 0, 0, 0], images[0, 1, 1, 1], images[0, 2, 31, 31]) == (11, 22, 33)


def test_gzip_and_raw_give_same_data(tmp_path):
    raw = make_synthetic_cifar(5, seed=0).tobytes()
    (tmp_path / "a.bin").write_bytes(raw)
    (tmp_path / "a.bin.gz").write_bytes(gzip.compress(raw))
    first, second = read_cifar10_batch(tmp_path / "a.bin"), read_cifar10_batch(tmp_path / "a.bin.gz")
    assert np.array_equal(first[0], second[0])
    assert np.array_equal(first[1], second[1])


def test_load_full_split(tmp_path):
    write_synthetic_cifar(tmp_path, per_file=12)
    splits = load_dataset("cifar10-jpeg", data_dir=tmp_path, split="full")
    assert splits.train.images.shape == (60, 3072)
    assert splits.train.images.dtype == torch.float32
    assert splits.train.images.min() >= 0.0
    assert splits.train.images.max() <= 1.0
    assert splits.valid is None
    assert splits.test.labels.shape == (12,)
    assert splits.image_shape == (3, 32, 32)
    assert splits.num_classes == 10


def test_limit_keeps_classes_balanced(tmp_path):
    folder = tmp_path / "cifar10"
    write_synthetic_cifar(tmp_path, name="cifar10", per_file=20, compress=False)
    # A test file sorted by class, like the rebuilt copy: 10 records of class 0, then 10 of class 1.
    records = make_synthetic_cifar(20, seed=9)
    records[:10, 0], records[10:, 0] = 0, 1
    (folder / "test_batch.bin").write_bytes(records.tobytes())
    splits = load_cifar10("cifar10", data_dir=tmp_path, split="full", limit=4)
    assert splits.test.labels.tolist() == [0, 0, 1, 1]


def test_hinton_split_needs_enough_images(tmp_path):
    write_synthetic_cifar(tmp_path, per_file=10)
    with pytest.raises(DataError, match="needs more than 10000"):
        load_dataset("cifar10-jpeg", data_dir=tmp_path, split="hinton")


def test_missing_files_named(tmp_path):
    write_synthetic_cifar(tmp_path, per_file=4)
    (tmp_path / "cifar10-jpeg" / "data_batch_3.bin.gz").unlink()
    with pytest.raises(DataError, match=r"data_batch_3\.bin") as info:
        load_dataset("cifar10-jpeg", data_dir=tmp_path, split="full")
    assert "downloads nothing" in str(info.value)


def test_truncated_file_rejected(tmp_path):
    path = tmp_path / "short.bin"
    path.write_bytes(make_synthetic_cifar(2, seed=0).tobytes()[:-5])
    with pytest.raises(DataError, match="not a positive multiple of the record size 3073"):
        read_cifar10_batch(path)


def test_corrupt_gzip_rejected(tmp_path):
    path = tmp_path / "bad.bin.gz"
    path.write_bytes(gzip.compress(make_synthetic_cifar(2, seed=0).tobytes())[:-20])
    with pytest.raises(DataError, match="Cannot read CIFAR-10 file"):
        read_cifar10_batch(path)


def test_bad_label_rejected(tmp_path):
    records = make_synthetic_cifar(3, seed=0)
    records[1, 0] = 12
    path = tmp_path / "labels.bin"
    path.write_bytes(records.tobytes())
    with pytest.raises(DataError, match="record 1 has label 12"):
        read_cifar10_batch(path)


def test_bad_request_rejected(tmp_path):
    with pytest.raises(UsageError, match="Unknown split"):
        load_cifar10("cifar10", data_dir=tmp_path, split="half")
    with pytest.raises(UsageError, match="Invalid limit"):
        load_cifar10("cifar10", data_dir=tmp_path, limit=0)
    with pytest.raises(UsageError, match="cifar10-jpeg"):
        load_dataset("cifar100", data_dir=tmp_path)


DATA_DIR = os.environ.get("FORWARDFORWARD_DATA", "")
REAL_TEST_BATCH = Path(DATA_DIR) / "cifar10-jpeg" / "test_batch.bin.gz"


@pytest.mark.skipif(not DATA_DIR or not REAL_TEST_BATCH.is_file(),
                    reason="set FORWARDFORWARD_DATA to a folder whose cifar10-jpeg/ contains the batches")
def test_real_test_batch_counts():
    images, labels = read_cifar10_batch(REAL_TEST_BATCH)
    assert images.shape == (10000, 3, 32, 32)
    assert np.bincount(labels).tolist() == [1000] * 10
