"""Label embeddings for supervised FF: the label is written into the input itself.

Hinton (2022) replaces the first `num_classes` pixels of a flattened MNIST image by a one-hot
label of height `strength` (those corner pixels are always background). The neutral label puts
`strength / num_classes` in every label pixel, for a one-pass read-out of the activities.

The `LabelEmbedding` classes put a label into inputs of any shape: a one-hot pixel overlay,
extra label channels, or a fixed noise pattern per class (label-wise noise labelling).
"""

from __future__ import annotations

import torch
from torch import nn


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


def _check_labels(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
    if labels.shape != (images.shape[0],):
        raise ValueError(
            f"labels must have shape ({images.shape[0]},) to match the images, got {tuple(labels.shape)}"
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got values from {int(labels.min())} to "
            f"{int(labels.max())}"
        )


class LabelEmbedding(nn.Module):
    """Base class of the ways to put a label into an input of any shape.

    Subclasses implement `embed`, `embed_neutral` and set `extra_channels`, the number of
    channels that the embedding adds to a `(batch, channels, height, width)` input.

    Args:
        num_classes: number of classes, at least 2.

    Raises:
        ValueError: fewer than 2 classes.
    """

    extra_channels = 0

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a label embedding needs at least 2 classes, got num_classes={num_classes}")
        self.num_classes = num_classes

    def embed(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Return `images` `(batch, ...)` carrying the `(batch,)` labels; see the subclass."""
        raise NotImplementedError(f"{type(self).__name__} does not implement embed()")

    def embed_neutral(self, images: torch.Tensor) -> torch.Tensor:
        """Return `images` `(batch, ...)` carrying no particular label; see the subclass."""
        raise NotImplementedError(f"{type(self).__name__} does not implement embed_neutral()")

    def embed_every_label(self, images: torch.Tensor) -> torch.Tensor:
        """Stack one embedded copy of `(batch, ...)` images per class.

        Returns:
            `(num_classes * batch, ...)`: rows `c * batch` to `(c + 1) * batch - 1` carry class `c`.
        """
        batch = images.shape[0]
        classes = torch.arange(self.num_classes, device=images.device).repeat_interleave(batch)
        repeated = images.repeat(self.num_classes, *([1] * (images.dim() - 1)))  # (classes * batch, ...)
        return self.embed(repeated, classes)


class NoiseLabels(LabelEmbedding):
    """Label-wise noise labelling: each class adds its own fixed noise pattern to the input.

    Class `c` has a pattern `P_c` of the input's shape, drawn once from N(0, 1) by a torch
    generator seeded with `seed`, and the labelled input is `x + amplitude * P_c`. The neutral
    input carries no pattern. The patterns are a buffer, so checkpoints store them and a loaded
    model keeps the patterns it was trained with whatever the seed of the new process.
    After VFF-Net (Lee, Shin and Kim, Neural Networks 2025).

    Args:
        num_classes: number of classes.
        shape: shape of one input without the batch axis, such as `(784,)` or `(3, 32, 32)`.
        amplitude: scale of the added pattern; must be positive.
        seed: seed of the patterns.

    Raises:
        ValueError: fewer than 2 classes, an empty shape, or a non-positive amplitude.
    """

    patterns: torch.Tensor

    def __init__(self, num_classes: int, shape: tuple[int, ...], amplitude: float = 1.0, seed: int = 0) -> None:
        super().__init__(num_classes)
        if len(shape) == 0 or any(int(d) <= 0 for d in shape):
            raise ValueError(f"shape must list positive sizes of one input, got {tuple(shape)}")
        if amplitude <= 0:
            raise ValueError(f"amplitude must be positive, got {amplitude}")
        self.shape = tuple(int(d) for d in shape)
        self.amplitude = float(amplitude)
        self.seed = int(seed)
        generator = torch.Generator().manual_seed(self.seed)
        self.register_buffer("patterns", torch.randn((num_classes, *self.shape), generator=generator))

    def _check_shape(self, images: torch.Tensor) -> None:
        if tuple(images.shape[1:]) != self.shape:
            raise ValueError(
                f"noise labels were made for inputs of shape (batch, {', '.join(map(str, self.shape))}), "
                f"got {tuple(images.shape)}; build NoiseLabels with the input's shape"
            )

    def embed(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Return `images + amplitude * P[labels]`, shape `(batch, *shape)`.

        Raises:
            ValueError: the images do not have the pattern's shape, or the labels are out of range.
        """
        self._check_shape(images)
        _check_labels(images, labels, self.num_classes)
        return images + self.amplitude * self.patterns[labels].to(images.dtype)

    def embed_neutral(self, images: torch.Tensor) -> torch.Tensor:
        """Return a copy of `images` `(batch, *shape)`: the neutral input carries no pattern.

        Raises:
            ValueError: the images do not have the pattern's shape.
        """
        self._check_shape(images)
        return images.clone()


class ChannelLabels(LabelEmbedding):
    """The label as extra input channels: one constant plane per class.

    `(batch, channels, height, width)` images get `num_classes` more channels; the plane of the
    label holds `strength` and the others 0. The neutral input has `strength / num_classes` in
    every label plane.

    Args:
        num_classes: number of classes.
        strength: value of the label's plane.

    Raises:
        ValueError: fewer than 2 classes.
    """

    def __init__(self, num_classes: int, strength: float = 1.0) -> None:
        super().__init__(num_classes)
        self.strength = float(strength)
        self.extra_channels = num_classes

    @staticmethod
    def _check_images(images: torch.Tensor) -> None:
        if images.dim() != 4:
            raise ValueError(
                f"label channels need images of shape (batch, channels, height, width), got "
                f"{tuple(images.shape)}"
            )

    def _append(self, images: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = images.shape
        planes = planes.to(images.dtype)[:, :, None, None].expand(batch, self.num_classes, height, width)
        return torch.cat([images, planes], dim=1)  # (batch, channels + num_classes, height, width)

    def embed(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Return `(batch, channels + num_classes, height, width)` images with the label planes.

        Raises:
            ValueError: images that are not 4-D, or labels out of range.
        """
        self._check_images(images)
        _check_labels(images, labels, self.num_classes)
        return self._append(images, torch.nn.functional.one_hot(labels, self.num_classes) * self.strength)

    def embed_neutral(self, images: torch.Tensor) -> torch.Tensor:
        """Return `(batch, channels + num_classes, height, width)` images with neutral planes.

        Raises:
            ValueError: images that are not 4-D.
        """
        self._check_images(images)
        planes = torch.full((images.shape[0], self.num_classes), self.strength / self.num_classes)
        return self._append(images, planes.to(images.device))


class PixelLabels(LabelEmbedding):
    """Hinton's one-hot pixel overlay for inputs of any shape.

    The first `num_classes` values of each flattened input are overwritten, as
    `overlay_labels` does; for a `(3, 32, 32)` image these are the first pixels of the top row
    of the first channel.

    Args:
        num_classes: number of classes.
        strength: value of the label's pixel.

    Raises:
        ValueError: fewer than 2 classes.
    """

    def __init__(self, num_classes: int, strength: float = 1.0) -> None:
        super().__init__(num_classes)
        self.strength = float(strength)

    def embed(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Return a copy of `(batch, ...)` images whose first values hold the one-hot label.

        Raises:
            ValueError: as `overlay_labels`.
        """
        flat = overlay_labels(images.flatten(1), labels, self.num_classes, self.strength)
        return flat.view(images.shape)

    def embed_neutral(self, images: torch.Tensor) -> torch.Tensor:
        """Return a copy of `(batch, ...)` images carrying the neutral label.

        Raises:
            ValueError: as `overlay_neutral`.
        """
        return overlay_neutral(images.flatten(1), self.num_classes, self.strength).view(images.shape)
