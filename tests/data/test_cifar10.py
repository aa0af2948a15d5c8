"""The CIFAR-10 binary reader: layout, splits and clear errors on damaged files."""

import gzip

import numpy as np
import pytest

from forwardforward.data.cifar10 import RECORD_BYTES, load_cifar10, read_batch_file
from forwardforward.errors import DataError, UsageError


def _records(count, seed):
    rng = np.random.default_rng(seed)
    records = rng.integers(0, 256, size=(count, RECORD_BYTES), dtype=np.uint8)
    records[:, 0] = rng.integers(0, 10, size=count)
    return records


def _write_folder(folder, count=30, compress=True):
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for seed, name in enumerate(names):
        raw = _records(count, seed).tobytes()
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return folder


def test_reads_layout_channel_major(tmp_path):
    records = _records(3, 0)
    path = tmp_path / "b.bin"
    path.write_bytes(records.tobytes())
    images, labels = read_batch_file(path)
    assert images.shape == (3, 3, 32, 32)
    assert labels.tolist() == records[:, 0].tolist()
    assert images[1, 0, 0, 0] == records[1, 1]  # first red pixel
    assert images[1, 2, 31, 31] == records[1, -1]  # last blue pixel
    assert images[1, 1, 0, 5] == records[1, 1 + 1024 + 5]


@pytest.mark.parametrize("compress", [True, False])
def test_load_full_and_hinton_splits(tmp_path, compress):
    _write_folder(tmp_path / "cifar10", count=2100, compress=compress)
    full = load_cifar10(tmp_path, split="full")
    assert full.train.images.shape == (5 * 2100, 3072)
    assert full.valid is None
    assert float(full.train.images.max()) <= 1.0
    assert full.image_shape == (3, 32, 32)
    hinton = load_cifar10(tmp_path, split="hinton", limit=7)
    assert hinton.train.images.shape == (7, 3072)
    assert hinton.valid.labels.shape == (7,)


def test_other_folder_name(tmp_path):
    _write_folder(tmp_path / "cifar10-jpeg")
    assert load_cifar10(tmp_path, split="full", folder_name="cifar10-jpeg").name == "cifar10-jpeg"


def test_truncated_file_is_named(tmp_path):
    folder = _write_folder(tmp_path / "cifar10", compress=False)
    path = folder / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="data_batch_3.bin.*not a positive multiple"):
        load_cifar10(tmp_path, split="full")


def test_corrupt_gzip_is_named(tmp_path):
    folder = _write_folder(tmp_path / "cifar10")
    (folder / "test_batch.bin.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match="test_batch.bin.gz"):
        load_cifar10(tmp_path, split="full")


def test_bad_label_is_reported(tmp_path):
    records = _records(4, 0)
    records[2, 0] = 12
    path = tmp_path / "b.bin"
    path.write_bytes(records.tobytes())
    with pytest.raises(DataError, match="label 12 at record 2"):
        read_batch_file(path)


def test_missing_file_names_folder(tmp_path):
    folder = _write_folder(tmp_path / "cifar10")
    (folder / "data_batch_5.bin.gz").unlink()
    with pytest.raises(DataError, match="data_batch_5.bin.gz.*cifar10"):
        load_cifar10(tmp_path, split="full")


@pytest.mark.parametrize("kwargs", [{"split": "halves"}, {"limit": 0}])
def test_bad_request(tmp_path, kwargs):
    with pytest.raises(UsageError):
        load_cifar10(tmp_path, **kwargs)
