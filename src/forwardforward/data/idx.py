"""Read and write IDX files, the array format of the MNIST and Fashion-MNIST distributions.

An IDX file starts with two zero bytes, a type code byte and a byte with the number of
dimensions. Then follows one big-endian uint32 per dimension and the array data in C order,
big-endian. Files are often gzip-compressed as a whole.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from forwardforward.data._atomic import atomic_write
from forwardforward.errors import DataError, UsageError

# Type code byte of the IDX header -> big-endian numpy dtype of the stored values.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

GZIP_MAGIC = b"\x1f\x8b"

# numpy 1.x arrays support at most 32 dimensions (numpy 2.x allows 64). IDX itself allows 255.
MAX_DIMENSIONS = 32

_HEADER_SIZE = 4
_DIMENSION_SIZE = 4


def _invalid_file(path: Path, problem: str) -> DataError:
    return DataError(
        f"Invalid IDX file {path}: {problem}. "
        "Delete it so that it is downloaded again, or replace it with an intact copy."
    )


def _read_bytes(path: Path) -> bytes:
    """Read the whole file and decompress it when it starts with the gzip magic bytes."""
    try:
        content = path.read_bytes()
    except OSError as error:
        reason = error.strerror or str(error)
        raise DataError(f"Cannot read IDX file {path}: {reason}.") from error

    if not content.startswith(GZIP_MAGIC):
        return content

    try:
        return gzip.decompress(content)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise _invalid_file(path, f"corrupt or truncated gzip data ({error})") from error


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw, into a numpy array.

    Gzip is detected from the magic bytes 1f 8b, whatever the file name. The result has the
    shape stored in the header, native byte order and one of the dtypes uint8, int8, int16,
    int32, float32 or float64.

    Raises:
        DataError: the file cannot be read or its gzip data is corrupt. Also when the header
            is invalid (first two bytes not zero, unknown type code, zero or too many
            dimensions) or the length differs from the header's (truncated or trailing bytes).
    """
    path = Path(path)
    content = _read_bytes(path)

    if len(content) < _HEADER_SIZE:
        raise _invalid_file(path, f"only {len(content)} bytes, shorter than the 4-byte header")
    if content[0] != 0 or content[1] != 0:
        first_bytes = content[:2].hex(" ")
        raise _invalid_file(path, f"the first two bytes are {first_bytes}, expected 00 00")

    type_code = content[2]
    if type_code not in IDX_DTYPES:
        known_codes = ", ".join(f"0x{code:02X}" for code in IDX_DTYPES)
        raise _invalid_file(path, f"unknown type code 0x{type_code:02X}, expected one of {known_codes}")
    dtype = IDX_DTYPES[type_code]

    ndim = content[3]
    if not 1 <= ndim <= MAX_DIMENSIONS:
        raise _invalid_file(path, f"{ndim} dimensions in the header, expected 1 to {MAX_DIMENSIONS}")

    data_offset = _HEADER_SIZE + _DIMENSION_SIZE * ndim
    if len(content) < data_offset:
        raise _invalid_file(
            path, f"truncated header: {len(content)} bytes, but {ndim} dimensions need {data_offset}"
        )
    shape = tuple(int(size) for size in np.frombuffer(content, dtype=">u4", count=ndim, offset=_HEADER_SIZE))

    expected_length = data_offset + math.prod(shape) * dtype.itemsize
    if len(content) != expected_length:
        kind = "truncated" if len(content) < expected_length else "trailing bytes"
        raise _invalid_file(
            path,
            f"{kind}: {len(content)} bytes (decompressed), but the header shape {shape} "
            f"of {dtype.newbyteorder('=').name} needs {expected_length}",
        )

    array = np.frombuffer(content, dtype=dtype, offset=data_offset).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def _type_code(dtype: np.dtype) -> int:
    for code, idx_dtype in IDX_DTYPES.items():
        if dtype.kind == idx_dtype.kind and dtype.itemsize == idx_dtype.itemsize:
            return code
    supported = ", ".join(idx_dtype.newbyteorder("=").name for idx_dtype in IDX_DTYPES.values())
    raise UsageError(f"Cannot write dtype {dtype} as IDX. Convert the array to one of: {supported}.")


def _encode_idx(array: np.ndarray) -> bytes:
    type_code = _type_code(array.dtype)
    if not 1 <= array.ndim <= 255:
        raise UsageError(
            f"Cannot write a {array.ndim}-dimensional array as IDX, which needs 1 to 255 dimensions."
        )
    if any(size > 0xFFFF_FFFF for size in array.shape):
        raise UsageError(f"Cannot write shape {array.shape} as IDX, which stores each size as uint32.")

    header = bytes([0, 0, type_code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    big_endian = np.ascontiguousarray(array, dtype=IDX_DTYPES[type_code])
    return header + big_endian.tobytes()


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write an array as an IDX file, gzip-compressed when the path ends in .gz.

    The file appears atomically: the data goes to a temporary file in the same folder, which
    then replaces `path`. Returns the path written.

    Raises:
        UsageError: the dtype is not one of uint8, int8, int16, int32, float32, float64, or the
            array has 0 or more than 255 dimensions, or a size above 2**32 - 1.
        OSError: the folder does not exist or is not writable.
    """
    path = Path(path)
    encoded = _encode_idx(np.asarray(array))

    with atomic_write(path) as file:
        if path.name.endswith(".gz"):
            # Empty filename and mtime 0 make the output depend on the array only. Level 6 is
            # the default of the gzip command and much faster than Python's default of 9.
            with gzip.GzipFile(filename="", mode="wb", fileobj=file, mtime=0, compresslevel=6) as gzipped:
                gzipped.write(encoded)
        else:
            file.write(encoded)
    return path
