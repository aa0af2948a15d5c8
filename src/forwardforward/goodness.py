"""Goodness functions: how strongly a layer's activity signals that its input is positive.

A goodness function maps activities of shape `(batch, features)` to one score per sample,
shape `(batch,)`. Hinton (2022, "The Forward-Forward Algorithm: Some Preliminary
Investigations") uses the sum of squared ReLU activities, computed before the activities are
length-normalised for the next layer; the mean of squares is the other common choice.
"""

from __future__ import annotations

from typing import Callable

import torch

from .registry import lookup

GoodnessFn = Callable[[torch.Tensor], torch.Tensor]


def sum_of_squares(activity: torch.Tensor) -> torch.Tensor:
    """Compute G = sum_j h_j^2 for each sample.

    Args:
        activity: `(batch, features)` activities, usually after ReLU.

    Returns:
        `(batch,)` goodness. With this goodness the natural threshold is the number of units,
        so that a positive sample has a mean square activity above 1 per unit.
    """
    return activity.square().sum(dim=1)


def mean_of_squares(activity: torch.Tensor) -> torch.Tensor:
    """Compute G = (1 / features) sum_j h_j^2 for each sample.

    Args:
        activity: `(batch, features)` activities.

    Returns:
        `(batch,)` goodness; a threshold of about 1 to 2 suits it.
    """
    return activity.square().mean(dim=1)


def negative_sum_of_squares(activity: torch.Tensor) -> torch.Tensor:
    """Compute G = -sum_j h_j^2 for each sample: the "min ssq" goodness of Hinton (2022).

    Positive data should give low squared activities, so the goodness is minus their sum.
    With the threshold at minus the number of units, the threshold objective becomes
    softplus(ssq_pos - units) + softplus(units - ssq_neg), and prediction by the argmax of
    goodness picks the label with the smallest sum of squares.

    Args:
        activity: `(batch, features)` activities.

    Returns:
        `(batch,)` goodness, never positive.
    """
    return -activity.square().sum(dim=1)


def channel_mean_of_squares(activity: torch.Tensor) -> torch.Tensor:
    """Compute G = (1 / channels) sum_c h_c^2 at every location of each sample.

    Self-Contrastive FF (Chen et al. 2025, "Self-Contrastive Forward-Forward Algorithm") scores
    every spatial location of a convolutional layer on its own, so a conv layer gets one
    goodness per pixel and its loss averages over samples and locations.

    Args:
        activity: `(batch, channels)` or `(batch, channels, *spatial)`, usually after ReLU.

    Returns:
        `(batch,)` for 2-D input (the same as `mean_of_squares`), else `(batch, *spatial)`.

    Raises:
        ValueError: `activity` has fewer than 2 dimensions.
    """
    if activity.dim() < 2:
        raise ValueError(f"activity must be (batch, channels, ...), got shape {tuple(activity.shape)}")
    return activity.square().mean(dim=1)


GOODNESS: dict[str, GoodnessFn] = {
    "sum_of_squares": sum_of_squares,
    "mean_of_squares": mean_of_squares,
    "negative_sum_of_squares": negative_sum_of_squares,
    "channel_mean_of_squares": channel_mean_of_squares,
}


def get_goodness(name: str) -> GoodnessFn:
    """Look up a goodness function by its registered name.

    Raises:
        UsageError: `name` is not registered.
    """
    return lookup(GOODNESS, "goodness", name)


def default_threshold(name: str, num_units: int) -> float:
    """Return the conventional threshold for a goodness function and a layer width.

    The sum of squares uses the number of units (Hinton's Matlab code) and its negative uses
    minus that; the mean of squares uses 2.0, the value of a widely used PyTorch port.
    """
    if name == "sum_of_squares":
        return float(num_units)
    if name == "negative_sum_of_squares":
        return -float(num_units)
    return 2.0
