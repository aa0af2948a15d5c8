"""Label embeddings for supervised FF: the label is written into the input itself.

Hinton (2022) replaces the first `num_classes` pixels of a flattened MNIST image by a one-hot
label of height `strength` (those corner pixels are always background). The neutral label puts
`strength / num_classes` in every label pixel, for a one-pass read-out of the activities.
"""

from __future__ import annotations

import torch


def _check_room(images: torch.Tensor, num_classes: int) -> None:
    if images.dim() != 2:
        raise ValueError(
            f"label overlay expects flattened images of shape (batch, features), got shape "
            f"{tuple(images.shape)}; flatten them first"
        )
    if images.shape[1] < num_classes:
        raise ValueError(
            f"cannot overlay {num_classes} classes on {images.shape[1]} features; "
            "the input needs at least one feature per class"
        )


def overlay_labels(
    images: torch.Tensor, labels: torch.Tensor, num_classes: int, strength: float = 1.0
) -> torch.Tensor:
    """Return a copy of `images` whose first `num_classes` features hold the one-hot label.

    Args:
        images: `(batch, features)`.
        labels: `(batch,)` integer labels in `[0, num_classes)`.
        num_classes: number of classes, and of overwritten features.
        strength: value written at the label's position; the other label features become 0.

    Returns:
        `(batch, features)` tensor, a new tensor (the input is not modified).

    Raises:
        ValueError: `images` is not 2-D or has fewer features than classes, or the
            batch sizes differ.
    """
    _check_room(images, num_classes)
    if labels.shape != (images.shape[0],):
        raise ValueError(
            f"labels must have shape ({images.shape[0]},) to match the images, got "
            f"{tuple(labels.shape)}"
        )
    out = images.clone()
    out[:, :num_classes] = 0.0
    out[torch.arange(images.shape[0], device=images.device), labels] = strength
    return out


def overlay_neutral(images: torch.Tensor, num_classes: int, strength: float = 1.0) -> torch.Tensor:
    """Return a copy of `images` carrying the neutral label, `strength / num_classes` per class.

    Args:
        images: `(batch, features)`.

    Returns:
        `(batch, features)` new tensor.

    Raises:
        ValueError: as `overlay_labels`.
    """
    _check_room(images, num_classes)
    out = images.clone()
    out[:, :num_classes] = strength / num_classes
    return out


def overlay_every_label(images: torch.Tensor, num_classes: int, strength: float = 1.0) -> torch.Tensor:
    """Stack one copy of `images` per class, each carrying that class as its label.

    Args:
        images: `(batch, features)`.

    Returns:
        `(num_classes * batch, features)`: rows `c * batch` to `(c + 1) * batch - 1` carry class
        `c`, so that `.view(num_classes, batch, ...)` recovers the per-class blocks.

    Raises:
        ValueError: as `overlay_labels`.
    """
    _check_room(images, num_classes)
    batch = images.shape[0]
    out = images.unsqueeze(0).repeat(num_classes, 1, 1)  # (classes, batch, features)
    out[:, :, :num_classes] = 0.0
    classes = torch.arange(num_classes, device=images.device)
    out[classes, :, classes] = strength
    return out.view(num_classes * batch, images.shape[1])
