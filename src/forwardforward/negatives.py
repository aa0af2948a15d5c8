"""Negative labels for supervised FF: a label that is certainly not the true one.

Both generators return a wrong label for every sample. A negative that carries the true label
would be a positive sample trained with the opposite sign, which is a common bug in FF code.
"""

from __future__ import annotations

import torch


def random_wrong_labels(
    labels: torch.Tensor, num_classes: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw, for each sample, a label uniformly from the `num_classes - 1` wrong ones.

    Args:
        labels: `(batch,)` true labels in `[0, num_classes)`.
        num_classes: at least 2.
        generator: random source on the labels' device, for reproducible draws.

    Returns:
        `(batch,)` int64 labels, each different from the true label.

    Raises:
        ValueError: `num_classes` is below 2.
    """
    if num_classes < 2:
        raise ValueError(f"wrong labels need at least 2 classes, got num_classes={num_classes}")
    offset = torch.randint(
        1, num_classes, labels.shape, generator=generator, device=labels.device
    )
    return (labels + offset) % num_classes


def hard_wrong_labels(
    scores: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Sample wrong labels in proportion to softmax(scores / temperature) over the wrong classes.

    Hinton's Matlab code draws the negative label from the linear read-out's softmax with the
    true class removed, so a label the network confuses with the truth is chosen more often.
    Any per-class score works, for example accumulated goodness.

    Args:
        scores: `(batch, num_classes)` logits or goodness per class.
        labels: `(batch,)` true labels.
        generator: random source on the scores' device.
        temperature: divides the scores before the softmax; must be positive.

    Returns:
        `(batch,)` int64 labels, never equal to the true label.

    Raises:
        ValueError: shapes disagree, fewer than 2 classes, or a non-positive temperature.
    """
    if scores.dim() != 2 or scores.shape[0] != labels.shape[0]:
        raise ValueError(
            f"scores must be (batch, num_classes) with batch {labels.shape[0]}, got "
            f"{tuple(scores.shape)}"
        )
    if scores.shape[1] < 2:
        raise ValueError(f"wrong labels need at least 2 classes, got {scores.shape[1]}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = scores.detach().float() / temperature
    logits = logits.masked_fill(
        torch.nn.functional.one_hot(labels, scores.shape[1]).bool(), float("-inf")
    )
    # Subtracting the row maximum keeps exp() finite; non-finite scores fall back to uniform.
    logits = logits - logits.max(dim=1, keepdim=True).values
    probs = logits.exp()
    probs = torch.where(torch.isfinite(probs), probs, torch.zeros_like(probs))
    wrong = torch.ones_like(probs).scatter_(1, labels.unsqueeze(1), 0.0)
    empty = probs.sum(dim=1, keepdim=True) <= 0
    probs = torch.where(empty, wrong, probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)
