"""Tests of reading and writing IDX files, including every kind of corrupt file."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from forwardforward.data import read_idx, write_idx
from forwardforward.errors import DataError, UsageError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def sample_array(dtype, shape=(3, 4, 5)):
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


def idx_bytes(type_code, shape, data=b""):
    header = bytes([0, 0, type_code, len(shape)]) + b"".join(struct.pack(">I", size) for size in shape)
    return header + data


def assert_corrupt(path, *fragments):
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    message = str(excinfo.value)
    assert str(path) in message
    assert "\n" not in message
    assert "Delete it" in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_dtypes(tmp_path, dtype, suffix):
    array = sample_array(dtype)
    path = tmp_path / f"array-idx3{suffix}"

    assert write_idx(path, array) == path
    loaded = read_idx(path)

    assert loaded.dtype == np.dtype(dtype)
    assert loaded.dtype.isnative
    assert loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)


@pytest.mark.parametrize("shape", [(7,), (2, 3), (0, 28, 28), (2, 1, 2, 1, 3)])
def test_round_trip_shapes(tmp_path, shape):
    array = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    path = write_idx(tmp_path / "shapes.gz", array)

    np.testing.assert_array_equal(read_idx(path), array)


def test_write_raw_header_layout(tmp_path):
    array = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16)
    path = write_idx(tmp_path / "layout-idx2", array)

    content = path.read_bytes()

    assert content[:4] == bytes([0, 0, 0x0B, 2])
    assert struct.unpack(">II", content[4:12]) == (2, 3)
    assert struct.unpack(">6h", content[12:]) == (1, 2, 3, 4, 5, 6)


def test_write_gz_is_gzip(tmp_path):
    path = write_idx(tmp_path / "labels.gz", np.arange(10, dtype=np.uint8))

    content = path.read_bytes()

    assert content[:2] == b"\x1f\x8b"
    assert gzip.decompress(content)[:4] == bytes([0, 0, 0x08, 1])


def test_read_big_endian_values(tmp_path):
    path = tmp_path / "manual-idx1"
    path.write_bytes(idx_bytes(0x0C, (3,), struct.pack(">3i", -2, 70000, 5)))

    array = read_idx(path)

    assert array.dtype == np.int32
    assert array.tolist() == [-2, 70000, 5]


def test_read_detects_gzip_by_magic(tmp_path):
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    compressed = write_idx(tmp_path / "a.gz", array)
    misnamed_gzip = tmp_path / "no-suffix-idx2"
    misnamed_gzip.write_bytes(compressed.read_bytes())
    raw = write_idx(tmp_path / "raw-idx2", array)
    misnamed_raw = tmp_path / "raw-idx2.gz"
    misnamed_raw.write_bytes(raw.read_bytes())

    np.testing.assert_array_equal(read_idx(misnamed_gzip), array)
    np.testing.assert_array_equal(read_idx(misnamed_raw), array)


def test_write_replaces_without_temp_files(tmp_path):
    path = tmp_path / "data.gz"
    write_idx(path, np.zeros(5, dtype=np.uint8))
    write_idx(path, np.ones(3, dtype=np.uint8))

    assert read_idx(path).tolist() == [1, 1, 1]
    assert [entry.name for entry in tmp_path.iterdir()] == ["data.gz"]


@pytest.mark.parametrize("dtype", [bool, np.int64, np.complex64])
def test_write_unsupported_dtype(tmp_path, dtype):
    array = np.zeros(3, dtype=dtype)

    with pytest.raises(UsageError, match=str(array.dtype)):
        write_idx(tmp_path / "bad", array)

    assert list(tmp_path.iterdir()) == []


def test_write_scalar_rejected(tmp_path):
    with pytest.raises(UsageError, match="0-dimensional"):
        write_idx(tmp_path / "scalar", np.array(5, dtype=np.uint8))


def test_write_failure_keeps_old_file(tmp_path, monkeypatch):
    path = write_idx(tmp_path / "keep", np.arange(4, dtype=np.uint8))

    def fail_fsync(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", fail_fsync)
    with pytest.raises(OSError, match="No space left"):
        write_idx(path, np.zeros(100, dtype=np.uint8))

    assert read_idx(path).tolist() == [0, 1, 2, 3]
    assert [entry.name for entry in tmp_path.iterdir()] == ["keep"]


def test_read_missing_file(tmp_path):
    path = tmp_path / "absent-idx1"

    with pytest.raises(DataError, match="Cannot read IDX file") as excinfo:
        read_idx(path)

    assert str(path) in str(excinfo.value)


def test_read_empty_file(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")

    assert_corrupt(path, "0 bytes")


def test_read_bad_magic(tmp_path):
    path = tmp_path / "bad-magic"
    path.write_bytes(b"\x01\x00" + idx_bytes(0x08, (2,), b"\x01\x02")[2:])

    assert_corrupt(path, "01 00", "expected 00 00")


def test_read_bad_type_code(tmp_path):
    path = tmp_path / "bad-type"
    path.write_bytes(idx_bytes(0x0A, (2,), b"\x01\x02"))

    assert_corrupt(path, "type code 0x0A")


def test_read_zero_dimensions(tmp_path):
    path = tmp_path / "zero-dims"
    path.write_bytes(idx_bytes(0x08, (), b"\x05"))

    assert_corrupt(path, "0 dimensions")


def test_read_too_many_dimensions(tmp_path):
    path = tmp_path / "many-dims"
    path.write_bytes(idx_bytes(0x08, (1,) * 40, b"\x05"))

    assert_corrupt(path, "40 dimensions")


def test_read_dimensions_beyond_file(tmp_path):
    path = tmp_path / "short-header"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + struct.pack(">I", 60000))

    assert_corrupt(path, "truncated header")


def test_read_truncated_data(tmp_path):
    path = write_idx(tmp_path / "truncated", np.zeros((4, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-1])

    assert_corrupt(path, "truncated", "(4, 28, 28)")


def test_read_trailing_bytes(tmp_path):
    path = write_idx(tmp_path / "trailing", np.zeros(10, dtype=np.float32))
    path.write_bytes(path.read_bytes() + b"\x00")

    assert_corrupt(path, "trailing bytes")


def test_read_truncated_inside_gzip(tmp_path):
    raw = write_idx(tmp_path / "raw", np.zeros(100, dtype=np.uint8)).read_bytes()
    path = tmp_path / "short-content.gz"
    path.write_bytes(gzip.compress(raw[:-10]))

    assert_corrupt(path, "truncated")


def test_read_corrupt_gzip(tmp_path):
    path = write_idx(tmp_path / "corrupt.gz", np.arange(1000, dtype=np.int32))
    content = bytearray(path.read_bytes())
    content[-6] ^= 0xFF  # inside the CRC-32 of the trailer
    path.write_bytes(bytes(content))

    assert_corrupt(path, "gzip")


def test_read_truncated_gzip(tmp_path):
    path = write_idx(tmp_path / "cut.gz", np.arange(1000, dtype=np.int32))
    path.write_bytes(path.read_bytes()[:-20])

    assert_corrupt(path, "gzip")


def test_read_garbage_after_gzip(tmp_path):
    path = write_idx(tmp_path / "garbage.gz", np.arange(10, dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"not gzip")

    assert_corrupt(path, "gzip")
