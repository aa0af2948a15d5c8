"""Find the data folder, which contains one sub-folder per data set (mnist/, fashion-mnist/)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV_VAR = "FORWARDFORWARD_DATA"
CACHE_FOLDER_NAME = "forwardforward"


def default_cache_dir() -> Path:
    """Return the user cache folder: $XDG_CACHE_HOME/forwardforward or ~/.cache/forwardforward.

    A relative XDG_CACHE_HOME is ignored, because the XDG Base Directory specification
    (version 0.8) declares relative paths in its variables invalid.
    """
    xdg_cache_home = os.environ.get("XDG_CACHE_HOME", "")
    if xdg_cache_home and Path(xdg_cache_home).is_absolute():
        return Path(xdg_cache_home) / CACHE_FOLDER_NAME
    return Path.home() / ".cache" / CACHE_FOLDER_NAME


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Choose the data folder: `data_dir`, else $FORWARDFORWARD_DATA, else the user cache folder.

    An empty string counts as unset. A leading ~ is expanded. The folder need not exist, and
    this function does not create it.

    Raises:
        RuntimeError: no `data_dir`, no FORWARDFORWARD_DATA and no home folder to put the
            cache in (raised by `Path.home`).
    """
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()

    from_environment = os.environ.get(DATA_DIR_ENV_VAR, "")
    if from_environment:
        return Path(from_environment).expanduser()

    return default_cache_dir()
