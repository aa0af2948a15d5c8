"""Test and validation errors of every prediction method, and per layer."""

from __future__ import annotations

from typing import Callable

import torch

from ..network import FFNetwork
from ..readout import LinearReadout


@torch.no_grad()
def evaluate_split(
    network: FFNetwork,
    readout: LinearReadout | None,
    images: torch.Tensor,
    labels: torch.Tensor,
    skip_first: int = 1,
    batch_size: int = 1000,
    labelled_input: bool = True,
) -> dict[str, float]:
    """Compute error rates in percent on one split.

    Args:
        network: the FF network.
        readout: the linear read-out, or None to skip `error_softmax`.
        images: `(n, in_features)` on the network's device.
        labels: `(n,)` int64.
        skip_first: bottom blocks left out of the goodness sum.
        batch_size: samples per pass; each pass computes `num_classes * batch_size` rows.
        labelled_input: the network takes a label in its input. False (unsupervised FF) skips
            the goodness errors, and the read-out sees the bare image.

    Returns:
        `error_goodness` (argmax of goodness summed over blocks `skip_first` and above),
        `error_softmax` (read-out on the neutral-label pass) and `error_layer{i}` (argmax of
        block i's goodness alone, 1-based), each in percent.
    """
    was_training = network.training
    network.eval()
    num_blocks = len(network.blocks)
    wrong_goodness = torch.zeros((), dtype=torch.long, device=images.device)
    wrong_softmax = torch.zeros((), dtype=torch.long, device=images.device)
    wrong_layer = torch.zeros(num_blocks, dtype=torch.long, device=images.device)
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size]
        y = labels[start : start + batch_size]
        if labelled_input:
            goodness = network.goodness_per_label(x)  # (batch, blocks, classes)
            wrong_goodness += (goodness[:, skip_first:].sum(dim=1).argmax(dim=1) != y).sum()
            wrong_layer += (goodness.argmax(dim=2) != y.unsqueeze(1)).sum(dim=0)
        if readout is not None:
            acts = network.neutral_activities(x) if labelled_input else network.activities(x)
            wrong_softmax += (readout(acts).argmax(dim=1) != y).sum()
    network.train(was_training)
    n = max(images.shape[0], 1)
    result = {}
    if labelled_input:
        result["error_goodness"] = 100.0 * wrong_goodness.item() / n
    if readout is not None:
        result["error_softmax"] = 100.0 * wrong_softmax.item() / n
    if labelled_input:
        for i, wrong in enumerate(wrong_layer.tolist(), start=1):
            result[f"error_layer{i}"] = 100.0 * wrong / n
    return result


def evaluate_splits(
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
    evaluate_split: Callable[[torch.Tensor, torch.Tensor], dict[str, float]],
) -> dict[str, float]:
    """Evaluate every split and prefix each metric with the split's name, as in `test/error_goodness`.

    Args:
        splits: split name to `(images, labels)`.
        evaluate_split: maps one split's images and labels to metrics such as `error_goodness`.
    """
    result = {}
    for name, (images, labels) in splits.items():
        result.update({f"{name}/{key}": value for key, value in evaluate_split(images, labels).items()})
    return result
