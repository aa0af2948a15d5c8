"""Peak training memory of a step: the tensors autograd keeps for backward, plus optimizer state.

On CPU, PyTorch has no allocator statistics, so the meter counts what a training step holds
beyond its inputs: every tensor that autograd saves for the backward pass (deduplicated by
storage, released when the graph is freed), plus the parameters, gradients and Adam moments of
the layers being trained. On CUDA the same steps can be read from
`torch.cuda.max_memory_allocated`; this meter gives a device-independent figure.
NOTE: workspace that an operator allocates and frees within its own call is not counted, so
the figure is a lower bound on the allocator's true peak.
"""

from __future__ import annotations

import weakref
from typing import Callable, Iterable, TypeVar

import torch
from torch import nn

T = TypeVar("T")

# Adam keeps two moments per parameter; with the parameter and its gradient that is 4 copies.
_ADAM_COPIES = 4


class _Saved:
    """Holder of one saved tensor; its garbage collection marks the tensor as released."""

    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


def _storage_key(tensor: torch.Tensor) -> tuple[int, int]:
    try:
        storage = tensor.untyped_storage()
        return storage.data_ptr(), storage.nbytes()
    except (RuntimeError, NotImplementedError):  # tensors without a plain storage
        return id(tensor), tensor.numel() * tensor.element_size()


class PeakMemoryMeter:
    """Measure the peak bytes held by training steps (see the module docstring for what counts).

    Attributes:
        peak_bytes: the largest figure seen over all measured steps.
    """

    def __init__(self) -> None:
        self.peak_bytes = 0
        self._live: dict[int, list[int]] = {}
        self._current = 0

    def measure(self, step: Callable[[], T], trained: Iterable[nn.Module], extra_bytes: int = 0) -> T:
        """Run `step()` and fold its peak into `peak_bytes`; return what `step` returns.

        Args:
            step: a function that runs forward and backward passes.
            trained: the modules whose parameters the step updates with Adam.
            extra_bytes: tensors the method keeps between steps, such as cached activities.
        """
        static = extra_bytes + sum(
            _ADAM_COPIES * p.numel() * p.element_size() for module in trained for p in module.parameters()
        )
        self._current = 0
        self._live.clear()
        step_peak = [0]

        def release(key: int) -> None:
            entry = self._live.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] == 0:
                self._current -= entry[0]
                del self._live[key]

        def pack(tensor: torch.Tensor) -> _Saved:
            key, nbytes = _storage_key(tensor)
            entry = self._live.get(key)
            if entry is None:
                self._live[key] = [nbytes, 1]
                self._current += nbytes
                step_peak[0] = max(step_peak[0], self._current)
            else:
                entry[1] += 1
            holder = _Saved(tensor)
            weakref.finalize(holder, release, key)
            return holder

        def unpack(holder: _Saved) -> torch.Tensor:
            return holder.tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            result = step()
        self.peak_bytes = max(self.peak_bytes, step_peak[0] + static)
        return result
