"""Evaluation metrics of graph tasks: accuracy on a node mask and ROC-AUC of link scores."""

from __future__ import annotations

import torch


def masked_accuracy(predictions: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> float:
    """Return the accuracy in percent of `(num_nodes,)` predicted classes on the nodes in `mask`.

    Raises:
        ValueError: `mask` selects no node.
    """
    count = int(mask.sum())
    if count == 0:
        raise ValueError("the mask selects no node, so accuracy is undefined")
    return 100.0 * (predictions[mask] == labels[mask]).sum().item() / count


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Compute the area under the ROC curve of `(n,)` scores for `(n,)` binary labels.

    Uses the Mann-Whitney form: the probability that a random positive scores above a random
    negative, with ties counted as one half (average ranks).

    Raises:
        ValueError: the labels contain only one class.
    """
    labels = labels.bool()
    num_pos = int(labels.sum())
    num_neg = labels.numel() - num_pos
    if num_pos == 0 or num_neg == 0:
        raise ValueError(f"ROC-AUC needs both classes, got {num_pos} positives and {num_neg} negatives")
    scores = scores.double()
    order = torch.argsort(scores)
    sorted_scores = scores[order]
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, scores.numel() + 1, dtype=torch.float64)
    # Give tied scores the mean of their ranks.
    _, inverse, counts = torch.unique_consecutive(sorted_scores, return_inverse=True, return_counts=True)
    first_rank = torch.cumsum(counts, 0) - counts + 1
    mean_rank = first_rank.double() + (counts.double() - 1) / 2
    ranks[order] = mean_rank[inverse]
    rank_sum = ranks[labels].sum().item()
    return (rank_sum - num_pos * (num_pos + 1) / 2) / (num_pos * num_neg)
