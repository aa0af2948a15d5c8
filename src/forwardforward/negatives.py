"""Negative data: wrong labels for supervised FF, hybrid images for unsupervised FF.

Both label generators return a wrong label for every sample. A negative that carries the true
label would be a positive sample trained with the opposite sign, which is a common bug in FF
code. Hybrid images need no label: they mix two real images under a mask of large regions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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


# The blur filter of Hinton (2022) for hybrid-image masks, applied along rows and columns.
_BLUR_TAPS = (0.25, 0.5, 0.25)


def hybrid_mask(
    batch: int,
    height: int,
    width: int,
    blur_passes: int = 6,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw masks with large regions of ones and zeros, for mixing two images.

    A random bit image (each pixel 0 or 1 with probability 1/2) is blurred `blur_passes`
    times with the filter [1/4, 1/2, 1/4] along rows and then along columns, and thresholded
    at 0.5 (Hinton 2022). The edges are padded by repeating the border pixel, so the blur
    does not pull border pixels towards zero.

    Args:
        batch: number of masks.
        height: mask height in pixels.
        width: mask width in pixels.
        blur_passes: blurs in each direction; 0 leaves independent random bits.
        generator: random source on `device`, for reproducible masks.
        device: where the masks are made; the generator's device when None.

    Returns:
        `(batch, height, width)` float32 tensor of zeros and ones.

    Raises:
        ValueError: a non-positive size or a negative number of passes.
    """
    if batch <= 0 or height <= 0 or width <= 0:
        raise ValueError(f"mask size must be positive, got batch={batch}, height={height}, width={width}")
    if blur_passes < 0:
        raise ValueError(f"blur_passes must not be negative, got {blur_passes}")
    if device is None:
        device = generator.device if generator is not None else "cpu"
    bits = torch.rand(batch, 1, height, width, generator=generator, device=device).lt(0.5).float()
    taps = torch.tensor(_BLUR_TAPS, device=bits.device)
    row_filter = taps.view(1, 1, 1, 3)
    column_filter = taps.view(1, 1, 3, 1)
    for _ in range(blur_passes):
        bits = F.conv2d(F.pad(bits, (1, 1, 0, 0), mode="replicate"), row_filter)
        bits = F.conv2d(F.pad(bits, (0, 0, 1, 1), mode="replicate"), column_filter)
    return (bits > 0.5).float().squeeze(1)  # (batch, height, width)


def hybrid_images(
    images: torch.Tensor,
    image_shape: tuple[int, int, int],
    blur_passes: int = 6,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mix every image with another image of the batch under a hybrid mask.

    Each output takes `images[i]` where the mask is 1 and `images[j]` where it is 0, with
    `j = (i + offset) % batch` for one random offset in `[1, batch)`, so the two sources are
    always different samples. Every channel uses the same mask. These are the negative data
    of unsupervised FF (Hinton 2022): real short-range structure, wrong long-range shapes.

    Args:
        images: `(batch, channels * height * width)` flattened images, batch at least 2.
        image_shape: `(channels, height, width)` of one image.
        blur_passes: see `hybrid_mask`.
        generator: random source on the images' device.

    Returns:
        `(batch, channels * height * width)` hybrid images.

    Raises:
        ValueError: fewer than 2 images, or a feature count that does not match `image_shape`.
    """
    batch = images.shape[0]
    channels, height, width = image_shape
    if images.dim() != 2 or images.shape[1] != channels * height * width:
        raise ValueError(
            f"images must have shape (batch, {channels * height * width}) for image shape "
            f"{tuple(image_shape)}, got {tuple(images.shape)}"
        )
    if batch < 2:
        raise ValueError(f"hybrid images mix two different samples, so the batch needs at least 2, got {batch}")
    offset = int(torch.randint(1, batch, (1,), generator=generator, device=images.device))
    partners = torch.roll(images, shifts=offset, dims=0)  # row i holds images[i - offset]
    mask = hybrid_mask(batch, height, width, blur_passes, generator, images.device)
    mask = mask.unsqueeze(1).expand(batch, channels, height, width).reshape(batch, -1)
    return mask * images + (1.0 - mask) * partners
