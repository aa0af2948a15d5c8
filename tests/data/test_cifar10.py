"""The CIFAR-10 binary reader on generated files, gzip or not, and on corrupt ones."""

import gzip

import numpy as np
import pytest
import torch

from forwardforward.data import load_dataset
from forwardforward.data.cifar10 import RECORD_BYTES, TEST_FILE, TRAIN_FILES, load_cifar10, read_cifar10_file
from forwardforward.errors import DataError, UsageError


def make_records(count, seed):
    """Return `count` records as bytes, and their labels and (count, 3, 32, 32) pixels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count).astype(np.uint8)
    pixels = rng.integers(0, 256, size=(count, 3, 32, 32)).astype(np.uint8)
    records = np.concatenate([labels[:, None], pixels.reshape(count, -1)], axis=1)
    return records.tobytes(), labels, pixels


def write_cifar(folder, per_file=2100, compress=True, subfolder=None):
    """Write five training files and a test file; return the training labels and pixels."""
    target = folder if subfolder is None else folder / subfolder
    target.mkdir(parents=True, exist_ok=True)
    all_labels, all_pixels = [], []
    for index, name in enumerate((*TRAIN_FILES, TEST_FILE)):
        data, labels, pixels = make_records(per_file, seed=index)
        if compress:
            (target / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (target / name).write_bytes(data)
        if name != TEST_FILE:
            all_labels.append(labels)
            all_pixels.append(pixels)
    return np.concatenate(all_labels), np.concatenate(all_pixels)


@pytest.mark.parametrize("compress", [True, False])
def test_reads_generated_files(tmp_path, compress):
    labels, pixels = write_cifar(tmp_path / "cifar10", compress=compress)

    splits = load_dataset("cifar10", data_dir=tmp_path, split="full")

    assert splits.image_shape == (3, 32, 32)
    assert splits.train.images.shape == (5 * 2100, 3072)
    assert splits.valid is None
    assert splits.test.images.shape == (2100, 3072)
    assert torch.equal(splits.train.labels, torch.from_numpy(labels.astype(np.int64)))
    # Channel-major order: the first 1024 values are the red plane.
    expected = torch.from_numpy(pixels[7, 0].reshape(-1).astype(np.float32)) / 255.0
    assert torch.equal(splits.train.images[7, :1024], expected)
    assert float(splits.train.images.max()) <= 1.0


def test_hinton_split_keeps_last_10000_for_validation(tmp_path):
    labels, _ = write_cifar(tmp_path / "cifar10-jpeg")

    splits = load_cifar10("cifar10-jpeg", data_dir=tmp_path)

    assert splits.train.images.shape[0] == 10500 - 10000
    assert torch.equal(splits.valid.labels, torch.from_numpy(labels[-10000:].astype(np.int64)))


def test_finds_official_archive_folder(tmp_path):
    write_cifar(tmp_path / "cifar10", per_file=10, compress=False, subfolder="cifar-10-batches-bin")

    splits = load_cifar10("cifar10", data_dir=tmp_path, split="full", limit=5)

    assert splits.train.images.shape == (5, 3072)


def test_truncated_file_names_file_and_size(tmp_path):
    data, _, _ = make_records(3, seed=0)
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(data[:-100])

    with pytest.raises(DataError) as excinfo:
        read_cifar10_file(path)

    message = str(excinfo.value)
    assert str(path) in message
    assert f"{3 * RECORD_BYTES - 100} bytes" in message
    assert "truncated" in message


def test_corrupt_gzip_names_file(tmp_path):
    data, _, _ = make_records(3, seed=0)
    path = tmp_path / "data_batch_1.bin.gz"
    path.write_bytes(gzip.compress(data)[:-20])  # cut the gzip stream short

    with pytest.raises(DataError, match="data_batch_1.bin.gz"):
        read_cifar10_file(path)


def test_garbage_gzip_names_file(tmp_path):
    path = tmp_path / "test_batch.bin.gz"
    path.write_bytes(b"this is not gzip at all")

    with pytest.raises(DataError, match="Corrupt gzip file"):
        read_cifar10_file(path)


def test_bad_label_names_record(tmp_path):
    data, _, _ = make_records(4, seed=0)
    records = bytearray(data)
    records[2 * RECORD_BYTES] = 12
    path = tmp_path / "data_batch_2.bin"
    path.write_bytes(bytes(records))

    with pytest.raises(DataError, match="record 2 has label 12"):
        read_cifar10_file(path)


def test_empty_file(tmp_path):
    path = tmp_path / "data_batch_3.bin"
    path.write_bytes(b"")

    with pytest.raises(DataError, match="empty"):
        read_cifar10_file(path)


def test_missing_files_listed(tmp_path):
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "data_batch_1.bin").write_bytes(make_records(1, 0)[0])

    with pytest.raises(DataError) as excinfo:
        load_cifar10("cifar10", data_dir=tmp_path)

    message = str(excinfo.value)
    assert "data_batch_2.bin" in message
    assert "test_batch.bin" in message
    assert "data_batch_1.bin," not in message


def test_rejects_bad_request(tmp_path):
    with pytest.raises(UsageError, match="split"):
        load_cifar10("cifar10", data_dir=tmp_path, split="half")
    with pytest.raises(UsageError, match="Unknown CIFAR-10"):
        load_cifar10("cifar100", data_dir=tmp_path)
