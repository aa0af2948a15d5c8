"""Layer-local objectives built on goodness.

Every objective takes the goodness of a batch of positive samples and of a batch of negative
samples, each of shape `(batch,)`, and returns a scalar loss to minimise (the batch mean).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .registry import lookup

ObjectiveFn = Callable[..., torch.Tensor]


def threshold_loss(
    goodness_pos: torch.Tensor, goodness_neg: torch.Tensor, threshold: float
) -> torch.Tensor:
    """Compute Hinton's FF loss: mean of softplus(theta - G_pos) + softplus(G_neg - theta).

    p(positive) = sigmoid(G - theta), so this is the binary cross-entropy of positives labelled 1
    and negatives labelled 0 with logits `G - theta` (Hinton 2022). `softplus` is evaluated in a
    stable form, so goodness values up to 1e6 and beyond give finite losses and gradients.

    Args:
        goodness_pos: `(batch,)` goodness of positive samples.
        goodness_neg: `(batch_neg,)` goodness of negative samples.
        threshold: theta, in the units of the goodness.

    Returns:
        Scalar: mean positive term plus mean negative term.
    """
    return F.softplus(threshold - goodness_pos).mean() + F.softplus(goodness_neg - threshold).mean()


def symba_loss(
    goodness_pos: torch.Tensor, goodness_neg: torch.Tensor, alpha: float = 4.0
) -> torch.Tensor:
    """Compute the symmetric SymBa loss: mean of softplus(-alpha (G_pos - G_neg)).

    From Lee and Song (2023), "SymBa: A Symmetric Balanced Forward-Forward Algorithm": it
    compares each positive with the negative at the same batch index, so no threshold is needed.

    Args:
        goodness_pos: `(batch,)` goodness of positive samples.
        goodness_neg: `(batch,)` goodness of their negative counterparts.
        alpha: scale of the goodness difference.

    Returns:
        Scalar loss.

    Raises:
        ValueError: the two batches differ in size.
    """
    if goodness_pos.shape != goodness_neg.shape:
        raise ValueError(
            f"SymBa pairs positives with negatives, but got shapes {tuple(goodness_pos.shape)} "
            f"and {tuple(goodness_neg.shape)}; pass one negative per positive"
        )
    return F.softplus(-alpha * (goodness_pos - goodness_neg)).mean()


def split_threshold_loss(
    goodness_pos: torch.Tensor,
    goodness_neg: torch.Tensor,
    threshold_pos: float,
    threshold_neg: float | None = None,
    penalty: float = 0.0,
) -> torch.Tensor:
    """Compute the SCFF loss: softplus(theta+ - G_pos) + softplus(G_neg - theta-) + lambda G_pos.

    From Chen et al. (2025), "Self-Contrastive Forward-Forward Algorithm": positives are pushed
    above their own threshold theta+, negatives below a separate theta-, and a small penalty
    lambda on the positive goodness stops it from growing without bound once it has cleared
    theta+. Every term is a mean over all its elements, so per-location goodness of shape
    `(batch, height, width)` is averaged over samples and locations alike.

    Args:
        goodness_pos: `(batch, ...)` goodness of positive pairs (non-negative).
        goodness_neg: `(batch_neg, ...)` goodness of negative pairs.
        threshold_pos: theta+.
        threshold_neg: theta-; None uses theta+ (the plain FF loss plus the penalty).
        penalty: lambda, the weight of the mean positive goodness; must not be negative.

    Returns:
        Scalar loss.

    Raises:
        ValueError: a negative penalty.
    """
    if penalty < 0:
        raise ValueError(f"penalty must not be negative, got {penalty}")
    theta_neg = threshold_pos if threshold_neg is None else threshold_neg
    loss = F.softplus(threshold_pos - goodness_pos).mean() + F.softplus(goodness_neg - theta_neg).mean()
    if penalty:
        loss = loss + penalty * goodness_pos.mean()
    return loss


OBJECTIVES: dict[str, ObjectiveFn] = {
    "threshold": threshold_loss,
    "symba": symba_loss,
    "split_threshold": split_threshold_loss,
}


def get_objective(name: str) -> ObjectiveFn:
    """Look up an objective by its registered name.

    Raises:
        UsageError: `name` is not registered.
    """
    return lookup(OBJECTIVES, "objective", name)
