"""Read CIFAR-10 in its binary version: `data_batch_1..5.bin` and `test_batch.bin`.

Each file is a run of 10,000 records of 3,073 bytes with no header: one label byte (0 to 9),
then 1,024 red, 1,024 green and 1,024 blue bytes, each plane a 32 x 32 image in row-major
order. The files may be gzip-compressed (`.bin.gz`, preferred when both exist).

Two folder names are registered: `cifar10/` for the official files and `cifar10-jpeg/` for a
copy rebuilt from JPEG re-encoded images, whose pixels differ from the official ones and whose
results must be labelled as such.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from forwardforward.data.locate import DATA_DIR_ENV_VAR, resolve_data_dir
from forwardforward.errors import DataError, UsageError

logger = logging.getLogger(__name__)

CIFAR10_NAMES = ("cifar10", "cifar10-jpeg")
NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
RECORD_BYTES = 1 + 3 * 32 * 32
TRAIN_STEMS = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_STEM = "test_batch"
HINTON_VALID_SIZE = 10_000
OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"


def _find(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.bin.gz", f"{stem}.bin"):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_bytes(path: Path) -> bytes:
    replace_hint = "Replace it with an intact copy."
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"Cannot read CIFAR-10 file {path}: {exc}. {replace_hint}") from None


def read_cifar10_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 binary batch file.

    Args:
        path: a `.bin` file or a gzip-compressed `.bin.gz` file.

    Returns:
        `(images, labels)`: uint8 images of shape `(n, 3, 32, 32)` (channels red, green, blue)
        and int64 labels of shape `(n,)`.

    Raises:
        DataError: the file cannot be read or decompressed, is empty, its size is not a
            multiple of 3,073 bytes, or a label byte is above 9.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) == 0 or len(raw) % RECORD_BYTES != 0:
        raise DataError(
            f"Invalid CIFAR-10 file {path}: {len(raw)} bytes (after decompression) is not a positive "
            f"multiple of the record size {RECORD_BYTES}; the file is truncated or not a CIFAR-10 "
            "binary batch. Replace it with an intact copy."
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)  # (n, 3073)
    labels = records[:, 0].astype(np.int64)
    bad = labels >= NUM_CLASSES
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"Invalid CIFAR-10 file {path}: record {index} has label {int(labels[index])}, outside "
            f"[0, {NUM_CLASSES}), and {int(bad.sum())} records in total do. Replace it with an intact copy."
        )
    images = records[:, 1:].reshape(-1, *IMAGE_SHAPE)  # (n, 3, 32, 32)
    return images, labels


def _locate(folder: Path, name: str) -> dict[str, Path]:
    stems = (*TRAIN_STEMS, TEST_STEM)
    found = {stem: _find(folder, stem) for stem in stems}
    missing = [stem for stem, path in found.items() if path is None]
    if missing:
        expected = ", ".join(f"{stem}.bin" for stem in missing)
        source = (
            f"Extract them from {OFFICIAL_URL} (the folder cifar-10-batches-bin)"
            if name == "cifar10"
            else "Copy the rebuilt files there"
        )
        raise DataError(
            f"Missing {name} files in {folder}: {expected} (or the same names with .gz). {source}, or "
            f"point {DATA_DIR_ENV_VAR} or --data-dir at a folder whose {name}/ sub-folder contains them. "
            "This reader downloads nothing."
        )
    return found  # type: ignore[return-value]


def _spread(count: int, limit: int | None) -> np.ndarray:
    """Indices of an evenly spaced subset of `limit` out of `count` samples (all when None).

    The rebuilt test file is sorted by class, so its first N samples would all be airplanes.
    An evenly spaced subset keeps the classes balanced in both the official and the rebuilt files.
    """
    if limit is None or limit >= count:
        return np.arange(count)
    return (np.arange(limit) * count) // limit


def _to_tensors(images: np.ndarray, labels: np.ndarray, limit: int | None):
    from forwardforward.data.datasets import Split

    keep = _spread(len(labels), limit)
    flat = np.ascontiguousarray(images[keep].reshape(len(keep), -1))  # (n, 3072), RGB planes
    return Split(
        images=torch.from_numpy(flat).to(torch.float32).div_(255.0),
        labels=torch.from_numpy(np.ascontiguousarray(labels[keep])),
    )


def load_cifar10(
    name: str = "cifar10",
    data_dir: str | os.PathLike[str] | None = None,
    split: str = "hinton",
    limit: int | None = None,
):
    """Load CIFAR-10 from the `name` sub-folder of the data folder.

    With split="hinton" the last 10,000 of the 50,000 training images form the validation
    set; with split="full" all 50,000 train and valid is None. `limit` keeps an evenly spaced
    subset of `limit` samples of every part, so that every class stays represented.

    Args:
        name: `cifar10` or `cifar10-jpeg` (the folder name and the data set's name).
        data_dir: data folder (see `resolve_data_dir`).
        split: `hinton` or `full`.
        limit: samples kept per part, or None for all.

    Returns:
        A `DatasetSplits` whose images are float32 `(n, 3072)` in [0, 1] (the red, green and blue
        32 x 32 planes, flattened) and labels int64 `(n,)`, with `image_shape` (3, 32, 32).

    Raises:
        UsageError: an unknown name or split, or a limit that is not a positive integer.
        DataError: a file is missing, unreadable, truncated or has an invalid label, or the
            training files do not hold more than 10,000 images for split="hinton".
    """
    from forwardforward.data.datasets import SPLITS, DatasetSplits

    if name not in CIFAR10_NAMES:
        raise UsageError(f"Unknown CIFAR-10 data set {name!r}. Choose one of: {', '.join(CIFAR10_NAMES)}.")
    if split not in SPLITS:
        raise UsageError(f"Unknown split {split!r}. Choose one of: {', '.join(SPLITS)}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"Invalid limit {limit!r}: expected a positive integer or None.")

    folder = resolve_data_dir(data_dir) / name
    paths = _locate(folder, name)
    logger.debug("Loading %s from %s", name, folder)
    parts = [read_cifar10_batch(paths[stem]) for stem in TRAIN_STEMS]
    train_images = np.concatenate([p[0] for p in parts])  # (50000, 3, 32, 32)
    train_labels = np.concatenate([p[1] for p in parts])
    test_images, test_labels = read_cifar10_batch(paths[TEST_STEM])

    if split == "full":
        train, valid = _to_tensors(train_images, train_labels, limit), None
    else:
        if len(train_labels) <= HINTON_VALID_SIZE:
            raise DataError(
                f"The training files in {folder} hold {len(train_labels)} images, but split='hinton' "
                f"needs more than {HINTON_VALID_SIZE}. Use split='full' or replace the files."
            )
        cut = len(train_labels) - HINTON_VALID_SIZE
        train = _to_tensors(train_images[:cut], train_labels[:cut], limit)
        valid = _to_tensors(train_images[cut:], train_labels[cut:], limit)
    return DatasetSplits(
        name=name,
        train=train,
        valid=valid,
        test=_to_tensors(test_images, test_labels, limit),
        num_classes=NUM_CLASSES,
        image_shape=IMAGE_SHAPE,
    )
