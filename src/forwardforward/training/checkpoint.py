"""Atomic checkpoints that load with `weights_only=True`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from ..errors import UsageError

CHECKPOINT_FORMAT = "forwardforward-checkpoint-v1"


def save_checkpoint(path: Path, state: dict) -> None:
    """Write `state` to `path` through a temporary file and a rename.

    A crash at any moment leaves either the previous checkpoint or the new one, never a
    partial file. `state` must hold only tensors and plain Python values.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": CHECKPOINT_FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by `save_checkpoint`, allowing only tensors and plain values.

    Raises:
        UsageError: the file is missing, unreadable, or not a forwardforward checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise UsageError(f"cannot read checkpoint {path}: {exc}".splitlines()[0]) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UsageError(f"{path} is not a forwardforward checkpoint")
    return state
