"""Atomic checkpoints that load with `weights_only=True`, and the trainer state they contain."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol, Union

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


class Stateful(Protocol):
    """Anything with PyTorch's `state_dict` / `load_state_dict` pair: a module or an optimizer."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state_dict: dict) -> Any: ...


# One entry of a checkpoint: a stateful object, a list of them (one state each, in order), or
# None for a part this run does not have (stored as None, skipped when loading).
Part = Union[Stateful, list[Stateful], tuple[Stateful, ...], None]


@contextmanager
def checkpoint_must_fit() -> Iterator[None]:
    """Turn the errors of loading a state that does not fit into one `UsageError`.

    PyTorch reports a missing key, a tensor of another shape or an optimizer of another size as
    `KeyError`, `RuntimeError` or `ValueError`. Inside this block each of them becomes a
    `UsageError` whose message ends with the first line of the original message.

    Raises:
        UsageError: the code inside the block raised `KeyError`, `RuntimeError` or `ValueError`.
    """
    # NOTE: a module's `load_state_dict` puts the details (which key, which shapes) on the lines
    # after "Error(s) in loading state_dict for NAME:", so the message names the module only.
    # A `TypeError`, raised when a part this run has was stored as None, passes through unchanged.
    try:
        yield
    except (KeyError, RuntimeError, ValueError) as exc:
        raise UsageError(f"the checkpoint does not match this run's configuration: {exc}".splitlines()[0]) from None


@dataclass(frozen=True)
class CheckpointParts:
    """The stateful parts and random generators of a trainer, by their key in the checkpoint.

    Every trainer describes its checkpoint with one of these, so all trainers save the same way.
    The state contains the epoch under `epoch`, each part's `state_dict()` under the part's key
    (a list of states for a list of parts, None for a missing part) and each generator's
    `get_state()` under the generator's key.

    Args:
        parts: checkpoint key to a module, an optimizer, a list of either, or None.
        generators: checkpoint key to a `torch.Generator` (CPU or device).
        optional_generators: generator keys that older checkpoints may lack; such a generator
            keeps its current state when its key is absent.
    """

    parts: Mapping[str, Part]
    generators: Mapping[str, torch.Generator]
    optional_generators: tuple[str, ...] = ()

    def capture(self, epoch: int) -> dict:
        """Return `{"epoch": epoch}` with every part's state and every generator's state, by key."""
        state: dict = {"epoch": epoch}
        for key, part in self.parts.items():
            if part is None:
                state[key] = None
            elif isinstance(part, (list, tuple)):
                state[key] = [item.state_dict() for item in part]
            else:
                state[key] = part.state_dict()
        for key, generator in self.generators.items():
            state[key] = generator.get_state()
        return state

    def restore(self, state: Mapping) -> int:
        """Load what `capture` returned into the parts and generators, and return the stored epoch.

        The parts load in the order of `parts`, then the generators. Each generator gets a CPU
        copy of its stored state, whatever device it lives on.

        Raises:
            UsageError: a part's state is missing or does not fit (another shape, another number
                of layers or optimizers).
            KeyError: a generator's or the epoch's key is missing and not optional.
        """
        with checkpoint_must_fit():
            for key, part in self.parts.items():
                if part is None:
                    continue
                if isinstance(part, (list, tuple)):
                    for item, item_state in zip(part, state[key], strict=True):
                        item.load_state_dict(item_state)
                else:
                    part.load_state_dict(state[key])
        for key, generator in self.generators.items():
            if key in state or key not in self.optional_generators:
                generator.set_state(state[key].cpu())
        return int(state["epoch"])


class ResumableTrainer:
    """Base of trainers that save and restore through their `checkpoint_parts()`.

    A subclass sets `epoch` and returns its parts and generators from `checkpoint_parts`. This
    class builds from them the `state_dict` / `load_state_dict` pair that `training.train` uses
    to write and resume checkpoints.
    """

    epoch: int

    def checkpoint_parts(self) -> CheckpointParts:
        """Return the parts and generators of this trainer by checkpoint key (each trainer defines it)."""
        raise NotImplementedError(f"{type(self).__name__} must define checkpoint_parts()")

    def state_dict(self) -> dict:
        """Return everything needed to continue the run bit for bit: epoch, weights, optimizers, RNGs."""
        return self.checkpoint_parts().capture(self.epoch)

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned, the epoch included.

        Raises:
            UsageError: the state does not fit this run's network or optimizers.
        """
        self.epoch = self.checkpoint_parts().restore(state)
