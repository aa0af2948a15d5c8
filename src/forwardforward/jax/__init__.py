"""The FF core in JAX (Flax modules, Optax optimizers), numerically matched to the PyTorch core.

Install it with `pip install 'forwardforward[jax]'`. Importing this package without JAX, Flax
and Optax raises `ImportError` naming the missing package; the rest of forwardforward never
imports it unless asked (`forwardforward train --backend jax`).
"""

from __future__ import annotations

try:
    import flax  # noqa: F401
    import jax  # noqa: F401
    import optax  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without JAX
    raise ImportError(
        f"forwardforward.jax needs JAX, Flax and Optax ({exc}); install them with "
        "pip install 'forwardforward[jax]'"
    ) from exc

from .functional import (
    mean_of_squares,
    peer_loss,
    peer_update,
    rms_normalize,
    sum_of_squares,
    symba_loss,
    threshold_loss,
)
from .labels import hard_wrong_labels, overlay_labels, overlay_neutral, random_wrong_labels
from .model import FFModel, FFSpec, FFState
from .modules import FFDense, FFNetwork, LinearReadout
from .optim import build_optimizer, gain_schedule, smoothed_sgd

__all__ = [
    "FFDense",
    "FFModel",
    "FFNetwork",
    "FFSpec",
    "FFState",
    "LinearReadout",
    "build_optimizer",
    "gain_schedule",
    "hard_wrong_labels",
    "mean_of_squares",
    "overlay_labels",
    "overlay_neutral",
    "peer_loss",
    "peer_update",
    "random_wrong_labels",
    "rms_normalize",
    "smoothed_sgd",
    "sum_of_squares",
    "symba_loss",
    "threshold_loss",
]
