"""Read CIFAR-10 in its binary version (`data_batch_1..5.bin`, `test_batch.bin`).

Each file is a plain run of 10,000 records of 3,073 bytes with no header: one label byte
(0 to 9), then 1,024 red, 1,024 green and 1,024 blue bytes, each plane a row-major 32 x 32
image. Files may be gzip-compressed (`.bin.gz`, preferred when both exist). A data folder
whose `cifar10/` sub-folder contains these files is enough; nothing is downloaded.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from forwardforward.data.datasets import HINTON_VALID_SIZE, DatasetSplits, Split
from forwardforward.data.locate import DATA_DIR_ENV_VAR, resolve_data_dir
from forwardforward.errors import DataError, UsageError

NAME = "cifar10"
NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
RECORD_BYTES = 1 + 3 * 32 * 32
RECORDS_PER_FILE = 10_000
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"


def _find(folder: Path, file_name: str) -> Path:
    for candidate in (folder / f"{file_name}.gz", folder / file_name):
        if candidate.is_file():
            return candidate
    raise DataError(
        f"Missing CIFAR-10 file {file_name}.gz (or {file_name}) in {folder}. Put the binary version of "
        f"CIFAR-10 there, or point {DATA_DIR_ENV_VAR} or --data-dir at a folder whose {folder.name}/ "
        "sub-folder contains it."
    )


def read_batch_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one binary batch file into uint8 images `(n, 3, 32, 32)` and int64 labels `(n,)`.

    Raises:
        DataError: the file cannot be read or decompressed, its size is not a whole number of
            records, it is empty, or a label is outside 0..9.
    """
    path = Path(path)
    hint = "Replace it with an intact copy of the CIFAR-10 binary version."
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"Cannot read CIFAR-10 file {path}: {exc}. {hint}") from None
    if len(raw) == 0 or len(raw) % RECORD_BYTES:
        raise DataError(
            f"Invalid CIFAR-10 file {path}: {len(raw)} bytes is not a positive multiple of the "
            f"{RECORD_BYTES}-byte record (the file is truncated or not CIFAR-10). {hint}"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise DataError(
            f"Invalid CIFAR-10 file {path}: label {int(labels[bad[0]])} at record {int(bad[0])} is outside "
            f"0..{NUM_CLASSES - 1} ({bad.size} records in total). {hint}"
        )
    images = records[:, 1:].reshape(-1, *IMAGE_SHAPE)
    return images, labels


def _to_split(images: np.ndarray, labels: np.ndarray, limit: int | None) -> Split:
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    flat = torch.from_numpy(np.ascontiguousarray(images.reshape(len(images), -1))).to(torch.float32).div_(255.0)
    return Split(images=flat, labels=torch.from_numpy(np.ascontiguousarray(labels)))


def load_cifar10(
    data_dir: str | os.PathLike[str] | None = None,
    split: str = "hinton",
    limit: int | None = None,
    folder_name: str = NAME,
) -> DatasetSplits:
    """Load CIFAR-10 from the `folder_name` sub-folder of the data folder.

    `folder_name="cifar10-jpeg"` reads a copy rebuilt from JPEG-compressed images. Its pixels
    differ from the original data set's, so results on it must be labelled as that copy.

    With split="hinton" the last 10,000 training images form the validation split; with "full"
    all training images are used and valid is None. `limit` keeps the first `limit` samples of
    every split. Only the files are read: nothing is downloaded.

    Returns:
        `DatasetSplits` with images `(n, 3072)` in [0, 1] (channel-major, red plane first) and
        int64 labels `(n,)`; `image_shape` is (3, 32, 32). split="hinton" trains on the first
        40,000 images and validates on the last 10,000.

    Raises:
        UsageError: an unknown split or a limit that is not a positive integer.
        DataError: a missing, unreadable, truncated or invalid file.
    """
    if split not in ("hinton", "full"):
        raise UsageError(f"Unknown split {split!r}. Choose one of: hinton, full.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"Invalid limit {limit!r}: expected a positive integer or None.")
    folder = resolve_data_dir(data_dir) / folder_name
    parts = [read_batch_file(_find(folder, name)) for name in TRAIN_FILES]
    train_images = np.concatenate([images for images, _ in parts])
    train_labels = np.concatenate([labels for _, labels in parts])
    test_images, test_labels = read_batch_file(_find(folder, TEST_FILE))
    if split == "full":
        train, valid = _to_split(train_images, train_labels, limit), None
    else:
        cut = len(train_images) - HINTON_VALID_SIZE
        if cut <= 0:
            raise DataError(f"split='hinton' needs more than {HINTON_VALID_SIZE} training images in {folder}, "
                            f"found {len(train_images)}; use split='full'")
        train = _to_split(train_images[:cut], train_labels[:cut], limit)
        valid = _to_split(train_images[cut:], train_labels[cut:], limit)
    return DatasetSplits(
        name=folder_name, train=train, valid=valid, test=_to_split(test_images, test_labels, limit),
        num_classes=NUM_CLASSES, image_shape=IMAGE_SHAPE,
    )
