"""Load MNIST and Fashion-MNIST from their four standard IDX files into torch tensors."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from forwardforward.data.cifar10 import CIFAR10_NAMES, load_cifar10
from forwardforward.data.download import OFFLINE_ENV_VAR, DownloadFailed, download_file, downloads_allowed
from forwardforward.data.idx import read_idx
from forwardforward.data.locate import DATA_DIR_ENV_VAR, resolve_data_dir
from forwardforward.errors import DataError, UsageError

logger = logging.getLogger(__name__)

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILE_STEMS = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

SPLITS = ("hinton", "full")
# split="hinton" keeps the last 10,000 training images for validation, so MNIST's 60,000
# become 50,000 for training and 10,000 for validation.
HINTON_VALID_SIZE = 10_000


@dataclass(frozen=True)
class DatasetInfo:
    """Source and format of a registered data set.

    `mirrors` are base URLs ending in "/", to which a file name such as
    "train-images-idx3-ubyte.gz" is appended. `sha256` maps each .gz file name to its SHA-256.
    `system_dirs` are read-only folders, such as a Linux distribution's copy, that are
    searched after the data folder and read in place.
    """

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    mirrors: tuple[str, ...]
    sha256: Mapping[str, str]
    system_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Split:
    """One part of a data set.

    `images` is a float32 tensor of shape (n, 784) with values in [0, 1], and `labels` is an
    int64 tensor of shape (n,) with values in [0, num_classes).
    """

    images: torch.Tensor
    labels: torch.Tensor


@dataclass(frozen=True)
class DatasetSplits:
    """A loaded data set: training, validation (None for split="full") and test parts."""

    name: str
    train: Split
    valid: Split | None
    test: Split
    num_classes: int
    image_shape: tuple[int, int, int]


MNIST = DatasetInfo(
    name="mnist",
    num_classes=10,
    image_shape=(1, 28, 28),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    sha256={
        f"{TRAIN_IMAGES}.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        f"{TRAIN_LABELS}.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        f"{TEST_IMAGES}.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        f"{TEST_LABELS}.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
)

# Debian's package dataset-fashion-mnist rewrites the gzip headers (no file name, a 2020
# mtime). Its .gz files are 23 or 24 bytes shorter than the published ones (26,421,880,
# 29,515, 4,422,102 and 5,148 bytes) and have other SHA-256 sums. So files found in
# system_dirs are read without a checksum check.
# NOTE: these SHA-256 sums come from two independent public download scripts that list them
# for the published files. No download from the mirror has confirmed them here.
FASHION_MNIST = DatasetInfo(
    name="fashion-mnist",
    num_classes=10,
    image_shape=(1, 28, 28),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    sha256={
        f"{TRAIN_IMAGES}.gz": "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
        f"{TRAIN_LABELS}.gz": "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
        f"{TEST_IMAGES}.gz": "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
        f"{TEST_LABELS}.gz": "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
    },
    system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
)

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (MNIST, FASHION_MNIST)}


def _check_request(name: str, split: str, limit: int | None) -> DatasetInfo:
    if name not in DATASETS:
        known = sorted([*DATASETS, *CIFAR10_NAMES])
        raise UsageError(f"Unknown data set {name!r}. Choose one of: {', '.join(known)}.")
    if split not in SPLITS:
        raise UsageError(f"Unknown split {split!r}. Choose one of: {', '.join(SPLITS)}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"Invalid limit {limit!r}: expected a positive integer or None.")
    return DATASETS[name]


def _find_file(stem: str, folders: list[Path]) -> Path | None:
    """Return the first existing `stem`.gz or `stem` in `folders`, preferring .gz in each folder."""
    for folder in folders:
        for file_name in (f"{stem}.gz", stem):
            candidate = folder / file_name
            if candidate.is_file():
                return candidate
    return None


def _missing_files_error(info: DatasetInfo, folder: Path, missing: list[str], reason: str) -> DataError:
    expected = ", ".join(f"{stem}.gz" for stem in missing)
    searched_too = "".join(f" Also searched {system_dir}." for system_dir in info.system_dirs)
    return DataError(
        f"Missing {info.name} files in {folder}: {expected} (or the same names without .gz).{searched_too} "
        f"{reason} Put the files in that folder, or point {DATA_DIR_ENV_VAR} or --data-dir at a folder "
        f"whose {info.name}/ sub-folder contains them."
    )


def _locate_files(info: DatasetInfo, folder: Path, download: bool) -> dict[str, Path]:
    """Find the four files of `info`, downloading the missing ones into `folder` when allowed."""
    search_folders = [folder, *info.system_dirs]
    found = {stem: _find_file(stem, search_folders) for stem in FILE_STEMS}
    missing = [stem for stem, path in found.items() if path is None]
    if not missing:
        return found

    if not download:
        raise _missing_files_error(info, folder, missing, "Downloads are disabled by download=False.")
    if not downloads_allowed():
        reason = f"Downloads are disabled by {OFFLINE_ENV_VAR}={os.environ[OFFLINE_ENV_VAR]}."
        raise _missing_files_error(info, folder, missing, reason)

    for index, stem in enumerate(missing):
        file_name = f"{stem}.gz"
        urls = [mirror + file_name for mirror in info.mirrors]
        try:
            found[stem] = download_file(urls, folder / file_name, info.sha256[file_name])
        except DownloadFailed as exc:
            # Offline users see this message first, so it names every file still missing and
            # gives the folder for them only once.
            reason = f"Downloading {file_name} failed from every mirror: {', '.join(exc.failures)}."
            raise _missing_files_error(info, folder, missing[index:], reason) from None
        except DataError as exc:
            raise _missing_files_error(info, folder, missing[index:], str(exc)) from None
    return found


def _read_images(path: Path, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Read an image file and check its shape and pixel values. The dtype stays as stored."""
    images = read_idx(path)
    replace_hint = "Delete it so that it is downloaded again, or replace it with an intact copy."

    if images.ndim != 3 or images.shape[1:] != image_shape[1:]:
        height, width = image_shape[1:]
        raise DataError(
            f"Invalid image file {path}: shape {images.shape}, expected (n, {height}, {width}). {replace_hint}"
        )
    if len(images) == 0:
        raise DataError(f"Invalid image file {path}: it contains no images. {replace_hint}")
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind != "f":
        raise DataError(
            f"Invalid image file {path}: pixel dtype {images.dtype}, expected uint8 (0 to 255) "
            f"or float32/float64 (0 to 1). {replace_hint}"
        )

    not_finite = ~np.isfinite(images)
    if not_finite.any():
        first_image = int(np.flatnonzero(not_finite.any(axis=(1, 2)))[0])
        raise DataError(
            f"Invalid image file {path}: {int(not_finite.sum())} NaN or infinite pixel values, "
            f"the first in image {first_image}. {replace_hint}"
        )
    out_of_range = (images < 0) | (images > 1)
    if out_of_range.any():
        first_image = int(np.flatnonzero(out_of_range.any(axis=(1, 2)))[0])
        raise DataError(
            f"Invalid image file {path}: {int(out_of_range.sum())} float pixel values outside [0, 1] "
            f"(min {images.min()}, max {images.max()}), the first in image {first_image}. {replace_hint}"
        )
    return images


def _read_labels(path: Path, num_classes: int) -> np.ndarray:
    """Read a label file and check that every label is an integer in [0, num_classes)."""
    labels = read_idx(path)
    replace_hint = "Delete it so that it is downloaded again, or replace it with an intact copy."

    if labels.ndim != 1:
        raise DataError(f"Invalid label file {path}: shape {labels.shape}, expected (n,). {replace_hint}")
    if labels.dtype.kind not in "iu":
        raise DataError(f"Invalid label file {path}: dtype {labels.dtype}, expected integers. {replace_hint}")

    out_of_range = (labels < 0) | (labels >= num_classes)
    if out_of_range.any():
        index = int(np.flatnonzero(out_of_range)[0])
        raise DataError(
            f"Invalid label file {path}: label {int(labels[index])} at index {index} is outside "
            f"[0, {num_classes}), and {int(out_of_range.sum())} labels in total are. {replace_hint}"
        )
    return labels.astype(np.int64)


def _read_pair(images_path: Path, labels_path: Path, info: DatasetInfo) -> tuple[np.ndarray, np.ndarray]:
    images = _read_images(images_path, info.image_shape)
    labels = _read_labels(labels_path, info.num_classes)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} contains {len(images)} images, but {labels_path} contains {len(labels)} labels. "
            "Delete both so that they are downloaded again, or replace them with matching copies."
        )
    return images, labels


def _to_split(images: np.ndarray, labels: np.ndarray, limit: int | None) -> Split:
    """Convert images (n, 28, 28) and labels (n,) to a Split, keeping the first `limit` samples."""
    if limit is not None:
        images = images[:limit]
        labels = labels[:limit]

    flat_images = np.ascontiguousarray(images.reshape(len(images), math.prod(images.shape[1:])))
    image_tensor = torch.from_numpy(flat_images)
    if image_tensor.dtype == torch.uint8:
        image_tensor = image_tensor.to(torch.float32).div_(255.0)
    else:
        image_tensor = image_tensor.to(torch.float32)

    label_tensor = torch.from_numpy(np.ascontiguousarray(labels))
    return Split(images=image_tensor, labels=label_tensor)


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    split: str = "hinton",
    download: bool = True,
    limit: int | None = None,
) -> DatasetSplits:
    """Load a registered data set (see DATASETS) as float32 images and int64 labels.

    The CIFAR-10 names (`cifar10`, `cifar10-jpeg`) are read by `load_cifar10` instead, which
    downloads nothing; see there.

    Files are looked up in the `name` sub-folder of the data folder (see `resolve_data_dir`),
    then in the data set's `system_dirs`. Each of the four files may be gzip-compressed
    (name ending in .gz, preferred when both exist) or raw. Missing files are downloaded into
    the data folder when `download` is true and FORWARDFORWARD_OFFLINE does not disable it.

    With split="hinton", train contains the first n - 10,000 training images (50,000 for MNIST),
    valid the last 10,000 and test the test file. With split="full", train contains all training
    images and valid is None. `limit` keeps the first `limit` samples of each part.
    Images have shape (n, 784) and values in [0, 1] (uint8 pixels divided by 255), labels
    have shape (n,).

    Raises:
        UsageError: unknown `name` or `split`, or `limit` is not a positive integer.
        DataError: files are missing and cannot be downloaded, a file is corrupt, images are not
            n x 28 x 28 or hold NaN, infinite or out-of-range values, a label is outside
            [0, num_classes), image and label counts differ, or split="hinton" gets no more
            than 10,000 training images.
    """
    if name in CIFAR10_NAMES:
        return load_cifar10(name, data_dir=data_dir, split=split, limit=limit)
    info = _check_request(name, split, limit)
    folder = resolve_data_dir(data_dir) / info.name
    paths = _locate_files(info, folder, download)
    logger.debug("Loading %s from %s", info.name, ", ".join(str(path) for path in paths.values()))

    train_images, train_labels = _read_pair(paths[TRAIN_IMAGES], paths[TRAIN_LABELS], info)
    test_images, test_labels = _read_pair(paths[TEST_IMAGES], paths[TEST_LABELS], info)

    if split == "full":
        train = _to_split(train_images, train_labels, limit)
        valid = None
    else:
        if len(train_images) <= HINTON_VALID_SIZE:
            raise DataError(
                f"{paths[TRAIN_IMAGES]} contains {len(train_images)} training images, but split='hinton' "
                f"needs more than {HINTON_VALID_SIZE} because it keeps the last {HINTON_VALID_SIZE} "
                "for validation. Use split='full', or replace the file with the complete one."
            )
        cut = len(train_images) - HINTON_VALID_SIZE
        train = _to_split(train_images[:cut], train_labels[:cut], limit)
        valid = _to_split(train_images[cut:], train_labels[cut:], limit)

    return DatasetSplits(
        name=info.name,
        train=train,
        valid=valid,
        test=_to_split(test_images, test_labels, limit),
        num_classes=info.num_classes,
        image_shape=info.image_shape,
    )
