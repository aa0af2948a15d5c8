"""Per-layer optimizers, including the update rule of Hinton's Matlab FF code.

Each FF block and the read-out own one optimizer. `build_optimizer` puts weight matrices and
biases into separate parameter groups so that weight cost never touches a bias.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn

from .errors import UsageError


class SmoothedSGD(torch.optim.Optimizer):
    """SGD with gradient smoothing and a weight cost applied outside the smoothing.

    The update of Hinton's Matlab code, written for a loss to minimise::

        g <- smoothing * g + (1 - smoothing) * grad
        p <- p - lr * (g + weight_cost * p)

    This differs from `torch.optim.SGD(momentum=0.9, dampening=0.9, weight_decay=wc)`, which
    would smooth the weight cost together with the gradient.

    Args:
        params: parameters or parameter groups; a group may set its own `weight_cost`.
        lr: learning rate.
        smoothing: weight of the old smoothed gradient, in [0, 1).
        weight_cost: L2 pull towards zero, applied each step.

    Raises:
        ValueError: a negative learning rate or weight cost, or smoothing outside [0, 1).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float,
        smoothing: float = 0.9,
        weight_cost: float = 0.0,
    ) -> None:
        if lr < 0:
            raise ValueError(f"lr must be non-negative, got {lr}")
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        if weight_cost < 0:
            raise ValueError(f"weight_cost must be non-negative, got {weight_cost}")
        super().__init__(params, {"lr": lr, "smoothing": smoothing, "weight_cost": weight_cost})

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        """Apply one update to every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            buffers = []
            for p in params:
                state = self.state[p]
                if "smoothed_grad" not in state:
                    state["smoothed_grad"] = torch.zeros_like(p)
                buffers.append(state["smoothed_grad"])
            # smoothing * g + (1 - smoothing) * grad, in one pass over memory.
            torch._foreach_lerp_(buffers, grads, 1.0 - group["smoothing"])
            if group["weight_cost"]:
                torch._foreach_mul_(params, 1.0 - group["lr"] * group["weight_cost"])
            torch._foreach_add_(params, buffers, alpha=-group["lr"])
        return loss


@dataclass(frozen=True)
class OptimizerConfig:
    """Settings of one layer's optimizer.

    Attributes:
        name: `smoothed_sgd` (Hinton's Matlab rule), `sgd` (PyTorch SGD with momentum),
            `adam` or `adamw` (Adam with decoupled weight decay).
        lr: learning rate before the schedule's gain.
        momentum: smoothing of `smoothed_sgd`, momentum of `sgd`, beta1 of `adam`.
        weight_decay: weight cost on weight matrices (never on biases); decoupled for
            `smoothed_sgd` and `adamw`, coupled (added to the gradient) for `sgd` and `adam`.
    """

    name: str = "smoothed_sgd"
    lr: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 0.002


OPTIMIZERS = ("smoothed_sgd", "sgd", "adam", "adamw")


def build_optimizer(module: nn.Module, config: OptimizerConfig) -> torch.optim.Optimizer:
    """Create the optimizer of one module, with weight decay on matrices only.

    Parameters with more than one dimension (weights) form the first group and get
    `weight_decay`; vectors (biases, gains) form the second with none.

    Raises:
        UsageError: an unknown optimizer name, or a module without trainable parameters.
    """
    if config.name not in OPTIMIZERS:
        raise UsageError(
            f"unknown optimizer {config.name!r}; choose one of {', '.join(OPTIMIZERS)}"
        )
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise UsageError(f"{type(module).__name__} has no trainable parameters to optimise")
    matrices = [p for p in params if p.dim() > 1]
    vectors = [p for p in params if p.dim() <= 1]
    if config.name == "smoothed_sgd":
        groups = [{"params": matrices, "weight_cost": config.weight_decay}]
        if vectors:
            groups.append({"params": vectors, "weight_cost": 0.0})
        return SmoothedSGD(groups, lr=config.lr, smoothing=config.momentum)
    groups = [{"params": matrices, "weight_decay": config.weight_decay}]
    if vectors:
        groups.append({"params": vectors, "weight_decay": 0.0})
    if config.name == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    if config.name == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=(config.momentum, 0.999))
    return torch.optim.Adam(groups, lr=config.lr, betas=(config.momentum, 0.999))
