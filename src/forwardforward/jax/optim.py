"""Optax optimizers for FF layers, including the update rule of Hinton's Matlab FF code.

`build_optimizer` turns the same `OptimizerConfig` that the PyTorch backend reads into an Optax
`GradientTransformation`, with the same meaning: weight decay reaches weight matrices only, and
the learning rate is the configured rate times the schedule's gain for the current epoch.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..errors import UsageError
from ..optim import OPTIMIZERS, OptimizerConfig
from ..training.schedules import LR_SCHEDULES

Schedule = Callable[[jax.Array], jax.Array]


class SmoothedSGDState(NamedTuple):
    """State of `smoothed_sgd`: the step count and one smoothed gradient per parameter."""

    count: jax.Array
    smoothed_grad: optax.Updates


def _is_matrix(params: optax.Params) -> optax.Params:
    return jax.tree_util.tree_map(lambda p: p.ndim > 1, params)


def smoothed_sgd(
    learning_rate: float | Schedule, smoothing: float = 0.9, weight_cost: float = 0.0
) -> optax.GradientTransformation:
    """SGD with gradient smoothing and a weight cost outside the smoothing (Hinton's Matlab rule).

    For a loss to minimise, with `lr` the learning rate at the current step::

        s <- smoothing * s + (1 - smoothing) * grad
        p <- p - lr * (s + weight_cost * p)        (weight cost on matrices only)

    This is `forwardforward.optim.SmoothedSGD`. It differs from SGD with momentum and coupled
    weight decay, which would smooth the weight cost together with the gradient.

    Args:
        learning_rate: a constant, or a schedule mapping the step count to the rate.
        smoothing: weight of the old smoothed gradient, in [0, 1).
        weight_cost: L2 pull towards zero on parameters with more than one dimension.

    Returns:
        An Optax transformation whose `update` needs `params`.

    Raises:
        ValueError: smoothing outside [0, 1) or a negative weight cost.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    if weight_cost < 0:
        raise ValueError(f"weight_cost must be non-negative, got {weight_cost}")

    def init_fn(params: optax.Params) -> SmoothedSGDState:
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return SmoothedSGDState(count=jnp.zeros([], jnp.int32), smoothed_grad=zeros)

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError("smoothed_sgd needs params in update() to apply the weight cost")
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        smoothed = jax.tree_util.tree_map(
            lambda s, g: smoothing * s + (1.0 - smoothing) * g, state.smoothed_grad, grads
        )

        def step(s, p):
            if p.ndim > 1 and weight_cost:
                return -(lr * weight_cost) * p - lr * s
            return -lr * s

        updates = jax.tree_util.tree_map(step, smoothed, params)
        return updates, SmoothedSGDState(count=state.count + 1, smoothed_grad=smoothed)

    return optax.GradientTransformation(init_fn, update_fn)


def gain_schedule(lr_schedule: str, total_epochs: int, steps_per_epoch: int) -> Schedule:
    """Map an optimizer step count to the learning-rate gain of its 1-based epoch.

    `hinton` is 1 for the first half of training and then `(1 + 2 (total - epoch)) / total`,
    as `forwardforward.training.schedules.hinton_gain`; `constant` is 1. The gain depends only
    on the step count kept in the optimizer state, so a resumed run continues the schedule.

    Raises:
        UsageError: an unknown schedule, or non-positive epochs or steps per epoch.
    """
    if lr_schedule not in LR_SCHEDULES:
        raise UsageError(f"unknown lr_schedule {lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
    if total_epochs <= 0 or steps_per_epoch <= 0:
        raise UsageError(
            f"a schedule needs positive epochs and steps per epoch, got {total_epochs} and {steps_per_epoch}"
        )

    def gain(count: jax.Array) -> jax.Array:
        epoch = jnp.minimum(count // steps_per_epoch + 1, total_epochs).astype(jnp.float32)
        if lr_schedule == "constant":
            return jnp.ones_like(epoch)
        decayed = (1.0 + 2.0 * (total_epochs - epoch)) / total_epochs
        return jnp.where(epoch <= total_epochs / 2, 1.0, decayed)

    return gain


def build_optimizer(config: OptimizerConfig, gain: Schedule | None = None) -> optax.GradientTransformation:
    """Create the Optax optimizer of one layer from the backend-neutral settings.

    `smoothed_sgd` is Hinton's rule and `adamw` is Adam, both with decoupled weight cost; `sgd` and `adam` add the weight
    decay to the gradient first, as `torch.optim.SGD` and `torch.optim.Adam` do. Either way the
    decay reaches weight matrices only, never biases.

    Args:
        config: name, learning rate, momentum and weight decay.
        gain: schedule of the factor on `config.lr`; None keeps it constant.

    Raises:
        UsageError: an unknown optimizer name.
    """
    if config.name not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {config.name!r}; choose one of {', '.join(OPTIMIZERS)}")
    base_lr = config.lr

    def learning_rate(count: jax.Array) -> jax.Array:
        return base_lr * (gain(count) if gain is not None else 1.0)

    if config.name == "smoothed_sgd":
        return smoothed_sgd(learning_rate, smoothing=config.momentum, weight_cost=config.weight_decay)
    decay = optax.add_decayed_weights(config.weight_decay, mask=_is_matrix)
    if config.name == "adamw":
        # Decoupled decay, as torch.optim.AdamW: p <- p - lr * (adam direction + decay * p).
        adam = optax.scale_by_adam(b1=config.momentum, b2=0.999, eps=1e-8)
        return optax.chain(adam, decay, optax.scale_by_learning_rate(learning_rate))
    if config.name == "sgd":
        direction = optax.trace(decay=config.momentum, nesterov=False)
    else:
        direction = optax.scale_by_adam(b1=config.momentum, b2=0.999, eps=1e-8)
    return optax.chain(decay, direction, optax.scale_by_learning_rate(learning_rate))
