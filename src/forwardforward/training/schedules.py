"""Learning-rate schedules, as a gain that multiplies each optimizer's base learning rate.

The gain is a pure function of the epoch, so a resumed run recomputes it exactly.
"""

from __future__ import annotations

from ..errors import UsageError

LR_SCHEDULES = ("hinton", "constant")


def hinton_gain(epoch: int, total_epochs: int) -> float:
    """Gain of Hinton's Matlab code for 1-based `epoch` out of `total_epochs`.

    1 for the first half of training, then `(1 + 2 * (total - epoch)) / total`, which falls
    linearly to `1 / total` in the last epoch.
    """
    if epoch <= total_epochs / 2:
        return 1.0
    return (1.0 + 2.0 * (total_epochs - epoch)) / total_epochs


def exponential_gain(step: int, decay: float, every: int) -> float:
    """Gain `decay ** (step // every)`: a step decay by `decay` after every `every` steps.

    Self-Contrastive FF decays each layer's learning rate this way, counting that layer's own
    minibatches, with its own `decay` and `every`.

    Raises:
        UsageError: a negative step, `decay` outside (0, 1], or `every` below 1.
    """
    if step < 0:
        raise UsageError(f"step must not be negative, got {step}")
    if not 0.0 < decay <= 1.0:
        raise UsageError(f"the learning-rate decay must be in (0, 1], got {decay}")
    if every < 1:
        raise UsageError(f"the decay interval must be at least 1 step, got {every}")
    return decay ** (step // every)


def lr_gain(schedule: str, epoch: int, total_epochs: int) -> float:
    """Gain of the named schedule at 1-based `epoch`.

    Raises:
        UsageError: an unknown schedule name, or an epoch outside 1..total_epochs.
    """
    if not 1 <= epoch <= total_epochs:
        raise UsageError(f"epoch {epoch} is outside 1..{total_epochs}")
    if schedule == "hinton":
        return hinton_gain(epoch, total_epochs)
    if schedule == "constant":
        return 1.0
    raise UsageError(f"unknown lr_schedule {schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")


def set_gain(optimizer, base_lr: float, gain: float) -> None:
    """Set every parameter group of `optimizer` to `base_lr * gain`."""
    for group in optimizer.param_groups:
        group["lr"] = base_lr * gain
