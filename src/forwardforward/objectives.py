"""Layer-local objectives built on goodness.

Every registered objective takes the goodness of a batch of positive samples and of a batch of
negative samples, each of shape `(batch,)`, and returns a scalar loss to minimise (the batch
mean). `virtual_node_cross_entropy` is the single-forward objective for graphs, which scores
nodes against one virtual node per class instead of against negatives.
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


def virtual_node_cross_entropy(
    node_activity: torch.Tensor,
    virtual_activity: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Compute cross-entropy over the dot products between nodes and per-class virtual nodes.

    The single-forward objective of Park et al. (ICLR 2024, "Forward Learning of Graph Neural
    Networks"): the logit of class c for node i is `<h_i, v_c> / temperature`, where `v_c` is the
    same layer's activity of the virtual node of class c.

    Args:
        node_activity: `(batch, features)` activities of labelled nodes.
        virtual_activity: `(num_classes, features)` activities of the virtual nodes, class order.
        labels: `(batch,)` int64 classes in `[0, num_classes)`.
        temperature: divides the logits; must be positive.

    Returns:
        Scalar: the batch-mean cross-entropy.

    Raises:
        ValueError: the feature widths differ, or `temperature` is not positive.
    """
    if node_activity.shape[1] != virtual_activity.shape[1]:
        raise ValueError(
            f"node and virtual-node activities need the same width, got {tuple(node_activity.shape)} "
            f"and {tuple(virtual_activity.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = node_activity @ virtual_activity.t() / temperature  # (batch, num_classes)
    return F.cross_entropy(logits, labels)


def cosine_contrastive_loss(
    activity_pos: torch.Tensor, activity_neg: torch.Tensor, margin: float = 0.0, eps: float = 1e-8
) -> torch.Tensor:
    """Push the features of each positive and its negative counterpart apart, position by position.

    At every spatial position `p` of sample `i`, with channel vectors `u = h_pos[i, :, p]` and
    `v = h_neg[i, :, p]`, the similarity is `cos = <u, v> / (max(|u|, eps) * max(|v|, eps))`,
    and the loss is the mean over samples and positions of `max(0, cos - margin)`. The pair is
    the same image with its true label and with a wrong one, so the loss asks the label to
    change the features. `(batch, features)` inputs count as one position. After the
    cosine-similarity contrastive loss of VFF-Net (Lee, Shin and Kim, Neural Networks 2025).

    Args:
        activity_pos: `(batch, channels, *spatial)` or `(batch, features)` positive activities.
        activity_neg: the negative counterparts, the same shape.
        margin: similarities below it cost nothing; in [-1, 1].
        eps: floor of each vector's norm, so all-zero vectors give a similarity of 0.

    Returns:
        Scalar loss.

    Raises:
        ValueError: the shapes differ, an input has fewer than 2 axes, or the margin is outside [-1, 1].
    """
    if activity_pos.shape != activity_neg.shape:
        raise ValueError(
            f"the cosine loss pairs each positive with its negative, but got shapes "
            f"{tuple(activity_pos.shape)} and {tuple(activity_neg.shape)}; pass one negative per positive"
        )
    if activity_pos.dim() < 2:
        raise ValueError(f"activities need a batch and a channel axis, got shape {tuple(activity_pos.shape)}")
    if not -1.0 <= margin <= 1.0:
        raise ValueError(f"margin must lie in [-1, 1], the range of a cosine, got {margin}")
    similarity = F.cosine_similarity(activity_pos, activity_neg, dim=1, eps=eps)  # (batch, *spatial)
    return torch.relu(similarity - margin).mean()


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
