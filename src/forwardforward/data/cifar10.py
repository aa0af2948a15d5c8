"""Read CIFAR-10 in its standard binary version (`data_batch_1.bin` ... `test_batch.bin`).

Each file is a run of records of 3,073 bytes with no header: one label byte (0 to 9), then
3,072 pixel bytes, the 32 x 32 red plane, then green, then blue, each in row-major order.
Files may be gzip-compressed (`data_batch_1.bin.gz`). The official archive unpacks into a
`cifar-10-batches-bin/` folder, which is searched too.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from forwardforward.data.datasets import HINTON_VALID_SIZE, SPLITS, DatasetSplits, Split
from forwardforward.data.locate import DATA_DIR_ENV_VAR, resolve_data_dir
from forwardforward.errors import DataError, UsageError

logger = logging.getLogger(__name__)

RECORD_BYTES = 1 + 3 * 32 * 32
IMAGE_SHAPE = (3, 32, 32)
NUM_CLASSES = 10
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
ARCHIVE_FOLDER = "cifar-10-batches-bin"
OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"

# Sub-folder of the data folder for each registered name. `cifar10-jpeg` is a copy rebuilt
# from lossy JPEG images in the same binary layout; results on it must be labelled as such.
CIFAR10_FOLDERS = {"cifar10": "cifar10", "cifar10-jpeg": "cifar10-jpeg"}


def read_cifar10_file(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 binary batch file, gzip-compressed or not.

    Args:
        path: the file; a name ending in `.gz` is decompressed.

    Returns:
        `(images, labels)`: uint8 `(n, 3, 32, 32)` and int64 `(n,)`.

    Raises:
        DataError: the file cannot be read, is not valid gzip, is empty, is not a whole
            number of 3,073-byte records (a truncated file), or holds a label above 9.
    """
    path = Path(path)
    replace_hint = "Replace it with an intact copy of the CIFAR-10 binary version."
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as stream:
                raw = stream.read()
        else:
            raw = path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"Corrupt gzip file {path}: {exc}. {replace_hint}") from None
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc}") from None
    if len(raw) == 0:
        raise DataError(f"Invalid CIFAR-10 file {path}: it is empty. {replace_hint}")
    if len(raw) % RECORD_BYTES:
        raise DataError(
            f"Invalid CIFAR-10 file {path}: {len(raw)} bytes is not a whole number of "
            f"{RECORD_BYTES}-byte records ({len(raw) // RECORD_BYTES} records and {len(raw) % RECORD_BYTES} "
            f"bytes left over), so the file is truncated or not CIFAR-10. {replace_hint}"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise DataError(
            f"Invalid CIFAR-10 file {path}: record {int(bad[0])} has label {int(labels[bad[0]])}, outside "
            f"0..{NUM_CLASSES - 1} ({bad.size} records in total). {replace_hint}"
        )
    images = records[:, 1:].reshape(-1, *IMAGE_SHAPE)  # (n, 3, 32, 32), planes R, G, B
    return images, labels


def _find(folder: Path, name: str) -> Path | None:
    for candidate_folder in (folder, folder / ARCHIVE_FOLDER):
        for file_name in (f"{name}.gz", name):
            if (candidate_folder / file_name).is_file():
                return candidate_folder / file_name
    return None


def _to_split(images: np.ndarray, labels: np.ndarray, limit: int | None) -> Split:
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    flat = torch.from_numpy(np.ascontiguousarray(images.reshape(len(images), -1)))
    return Split(images=flat.to(torch.float32).div_(255.0), labels=torch.from_numpy(np.ascontiguousarray(labels)))


def load_cifar10(
    name: str = "cifar10",
    data_dir: str | os.PathLike[str] | None = None,
    split: str = "hinton",
    limit: int | None = None,
) -> DatasetSplits:
    """Load CIFAR-10 from the binary files in the `name` sub-folder of the data folder.

    Args:
        name: `cifar10` (folder `cifar10/`) or `cifar10-jpeg` (folder `cifar10-jpeg/`).
        data_dir: the data folder; see `resolve_data_dir`.
        split: `hinton` (the first 40,000 training images for training and the last 10,000,
            `data_batch_5`, for validation) or `full` (all 50,000 for training, no validation).
        limit: keep the first `limit` samples of each part.

    Returns:
        Splits with float32 images `(n, 3072)` in [0, 1], channel-major (all red values, then
        green, then blue), and int64 labels `(n,)`.

    Raises:
        UsageError: an unknown name or split, or a bad limit.
        DataError: missing, corrupt or truncated files. Nothing is downloaded: the official
            archive is a tar file that must be unpacked by hand.
    """
    if name not in CIFAR10_FOLDERS:
        raise UsageError(f"Unknown CIFAR-10 data set {name!r}. Choose one of: {', '.join(CIFAR10_FOLDERS)}.")
    if split not in SPLITS:
        raise UsageError(f"Unknown split {split!r}. Choose one of: {', '.join(SPLITS)}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"Invalid limit {limit!r}: expected a positive integer or None.")
    folder = resolve_data_dir(data_dir) / CIFAR10_FOLDERS[name]
    paths = {file_name: _find(folder, file_name) for file_name in (*TRAIN_FILES, TEST_FILE)}
    missing = [file_name for file_name, path in paths.items() if path is None]
    if missing:
        raise DataError(
            f"Missing {name} files in {folder}: {', '.join(missing)} (each may end in .gz; "
            f"{ARCHIVE_FOLDER}/ is searched too). Unpack the binary version from {OFFICIAL_URL} there, "
            f"or point {DATA_DIR_ENV_VAR} or --data-dir at a folder whose {CIFAR10_FOLDERS[name]}/ "
            "sub-folder contains them."
        )
    logger.debug("Loading %s from %s", name, folder)

    parts = [read_cifar10_file(paths[file_name]) for file_name in TRAIN_FILES]
    train_images = np.concatenate([images for images, _ in parts])
    train_labels = np.concatenate([labels for _, labels in parts])
    test_images, test_labels = read_cifar10_file(paths[TEST_FILE])

    if split == "full":
        train, valid = _to_split(train_images, train_labels, limit), None
    else:
        if len(train_images) <= HINTON_VALID_SIZE:
            raise DataError(
                f"The training files in {folder} contain {len(train_images)} images, but split='hinton' needs "
                f"more than {HINTON_VALID_SIZE}. Use split='full', or replace them with complete files."
            )
        cut = len(train_images) - HINTON_VALID_SIZE
        train = _to_split(train_images[:cut], train_labels[:cut], limit)
        valid = _to_split(train_images[cut:], train_labels[cut:], limit)
    return DatasetSplits(
        name=name, train=train, valid=valid, test=_to_split(test_images, test_labels, limit),
        num_classes=NUM_CLASSES, image_shape=IMAGE_SHAPE,
    )
