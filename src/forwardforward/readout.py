"""Prediction from an FF network: by accumulated goodness, and by a linear softmax read-out."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UsageError
from .network import FFNetwork
from .normalization import rms_normalize
from .optim import OptimizerConfig, build_optimizer


def predict_by_goodness(
    network: FFNetwork, images: torch.Tensor, skip_first: int = 1
) -> torch.Tensor:
    """Predict the label whose overlay gives the highest goodness summed over blocks.

    Every label is tried in one batched pass, and the argmax is taken per sample. Hinton's
    Matlab code skips the first hidden layer, whose goodness carries little information about the label.

    Args:
        network: the trained network.
        images: `(batch, in_features)`.
        skip_first: number of bottom blocks left out of the sum.

    Returns:
        `(batch,)` int64 predicted labels.

    Raises:
        UsageError: `skip_first` leaves no block to sum.
    """
    check_skip(skip_first, len(network.blocks))
    goodness = network.goodness_per_label(images)  # (batch, blocks, classes)
    return goodness[:, skip_first:].sum(dim=1).argmax(dim=1)


def check_skip(skip_first: int, num_blocks: int) -> None:
    """Raise `UsageError` unless `0 <= skip_first < num_blocks`."""
    if not 0 <= skip_first < num_blocks:
        raise UsageError(
            f"cannot skip {skip_first} of {num_blocks} blocks when predicting; "
            f"use a value from 0 to {num_blocks - 1}"
        )


class LinearReadout(nn.Module):
    """A linear softmax on the normalised activities of a neutral-label pass.

    It is trained alongside the blocks, on detached activities, so it never changes them.

    Args:
        widths: unit counts of all blocks, bottom first.
        num_classes: number of outputs.
        skip_first: number of bottom blocks whose activities are left out.
        bias: learn a bias per class; Hinton's Matlab code has none (its bias stays zero).

    Raises:
        UsageError: `skip_first` leaves no block.
    """

    def __init__(
        self, widths: Sequence[int], num_classes: int, skip_first: int = 1, bias: bool = True
    ) -> None:
        super().__init__()
        check_skip(skip_first, len(widths))
        self.skip_first = skip_first
        self.linear = nn.Linear(sum(widths[skip_first:]), num_classes, bias=bias)
        nn.init.zeros_(self.linear.weight)  # the Matlab code starts the softmax weights at zero
        if bias:
            nn.init.zeros_(self.linear.bias)
        self.optimizer: torch.optim.Optimizer | None = None

    def configure_optimizer(self, config: OptimizerConfig) -> torch.optim.Optimizer:
        """Create the read-out's own optimizer."""
        self.optimizer = build_optimizer(self, config)
        return self.optimizer

    def features(self, activities: Sequence[torch.Tensor]) -> torch.Tensor:
        """Concatenate normalised activities `(batch, units_l)` into `(batch, sum of units)`."""
        used = [rms_normalize(a.detach()) for a in activities[self.skip_first :]]
        return torch.cat(used, dim=1)  # (batch, sum of used widths)

    def forward(self, activities: Sequence[torch.Tensor]) -> torch.Tensor:
        """Return `(batch, num_classes)` float32 logits from one activity tensor per block.

        The read-out is small, so it stays in float32 even inside a bfloat16 autocast.
        """
        features = self.features(activities)
        if features.dtype in (torch.bfloat16, torch.float16):
            features = features.float()
        with torch.autocast(features.device.type, enabled=False):
            return self.linear(features)

    def train_step(self, activities: Sequence[torch.Tensor], labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Take one step on the cross-entropy of `(batch,)` labels.

        Returns:
            `(logits, loss)`: `(batch, num_classes)` logits computed before the step and the
            detached scalar loss.

        Raises:
            RuntimeError: `configure_optimizer` was not called first.
        """
        if self.optimizer is None:
            raise RuntimeError("call configure_optimizer() before train_step()")
        logits = self(activities)
        loss = F.cross_entropy(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return logits.detach(), loss.detach()
