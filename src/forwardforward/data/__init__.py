"""Data sets for Forward-Forward training: IDX files, downloads and loading into tensors."""

from forwardforward.data.datasets import (
    DATASETS,
    FASHION_MNIST,
    MNIST,
    DatasetInfo,
    DatasetSplits,
    Split,
    load_dataset,
)
from forwardforward.data.download import OFFLINE_ENV_VAR, DownloadFailed, download_file, downloads_allowed
from forwardforward.data.idx import read_idx, write_idx
from forwardforward.data.locate import DATA_DIR_ENV_VAR, default_cache_dir, resolve_data_dir

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV_VAR",
    "FASHION_MNIST",
    "MNIST",
    "OFFLINE_ENV_VAR",
    "DatasetInfo",
    "DownloadFailed",
    "DatasetSplits",
    "Split",
    "default_cache_dir",
    "download_file",
    "downloads_allowed",
    "load_dataset",
    "read_idx",
    "resolve_data_dir",
    "write_idx",
]
