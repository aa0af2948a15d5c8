"""Batched image augmentations on the training device: jitter, random shifts and flips.

Each function draws one independent transformation per sample from an explicit
`torch.Generator`, so a seeded run draws the same augmentations after a resume.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def jitter_images(
    images: torch.Tensor,
    image_shape: tuple[int, int, int],
    max_shift: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Shift every image by its own random offset of up to `max_shift` pixels in each direction.

    Offsets are drawn uniformly from `[-max_shift, max_shift]` for rows and for columns, per
    image. Pixels shifted in from outside the image are 0. The whole batch is shifted with one
    gather, on the images' device, so no Python loop runs per sample.

    Args:
        images: `(batch, channels * height * width)` flattened images.
        image_shape: `(channels, height, width)` of one image.
        max_shift: largest shift in pixels; 0 returns the images unchanged.
        generator: random source on the images' device, for reproducible shifts.

    Returns:
        `(batch, channels * height * width)` shifted images (a new tensor unless `max_shift` is 0).

    Raises:
        ValueError: a negative `max_shift`, or a feature count that does not match `image_shape`.
    """
    if max_shift < 0:
        raise ValueError(f"max_shift must not be negative, got {max_shift}")
    channels, height, width = image_shape
    if images.dim() != 2 or images.shape[1] != channels * height * width:
        raise ValueError(
            f"images must have shape (batch, {channels * height * width}) for image shape "
            f"{tuple(image_shape)}, got {tuple(images.shape)}"
        )
    if max_shift == 0:
        return images
    batch = images.shape[0]
    shifts = torch.randint(
        -max_shift, max_shift + 1, (2, batch), generator=generator, device=images.device
    )
    padded = torch.nn.functional.pad(
        images.view(batch, channels, height, width), (max_shift,) * 4
    )  # (batch, channels, height + 2 s, width + 2 s)

    # Output pixel (r, c) of a shift (dy, dx) reads padded pixel (r - dy + s, c - dx + s).
    rows = torch.arange(height, device=images.device).view(1, height) - shifts[0].view(batch, 1) + max_shift
    columns = torch.arange(width, device=images.device).view(1, width) - shifts[1].view(batch, 1) + max_shift
    batch_index = torch.arange(batch, device=images.device).view(batch, 1, 1, 1)
    channel_index = torch.arange(channels, device=images.device).view(1, channels, 1, 1)
    shifted = padded[batch_index, channel_index, rows.view(batch, 1, height, 1), columns.view(batch, 1, 1, width)]
    return shifted.reshape(batch, channels * height * width)


# TODO: jitter_images (zero-filled shifts of flat images) and random_shift overlap; merge them
# into one shift with a fill option.
def random_shift(
    images: torch.Tensor,
    max_shift: int,
    generator: torch.Generator | None = None,
    padding_mode: str = "constant",
) -> torch.Tensor:
    """Translate every image by its own random whole-pixel offset in [-max_shift, max_shift].

    Pixels shifted in from outside the image are 0 (`padding_mode="constant"`) or mirrored
    (`"reflect"`).

    Args:
        images: `(batch, channels, height, width)`.
        max_shift: largest offset in pixels along each axis; 0 returns `images` unchanged.
        generator: random source on the images' device.
        padding_mode: `constant` or `reflect` (see `torch.nn.functional.pad`).

    Returns:
        `(batch, channels, height, width)` shifted images.

    Raises:
        ValueError: `images` is not 4-D, or `max_shift` is negative or not smaller than the
            image's height and width.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (batch, channels, height, width), got shape {tuple(images.shape)}")
    batch, _, height, width = images.shape
    if max_shift < 0 or max_shift >= min(height, width):
        raise ValueError(f"max_shift must be in [0, {min(height, width) - 1}] for these images, got {max_shift}")
    if max_shift == 0:
        return images
    padded = F.pad(images, (max_shift,) * 4, mode=padding_mode)  # (batch, C, H + 2m, W + 2m)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, batch), generator=generator, device=images.device)
    rows = torch.arange(height, device=images.device) + offsets[0][:, None]  # (batch, H)
    cols = torch.arange(width, device=images.device) + offsets[1][:, None]  # (batch, W)
    index = torch.arange(batch, device=images.device)[:, None, None]
    shifted = padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]]  # (batch, H, W, C)
    return shifted.permute(0, 3, 1, 2).contiguous()


def random_flip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each `(batch, channels, height, width)` image left to right with probability 1/2.

    Raises:
        ValueError: `images` is not 4-D.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (batch, channels, height, width), got shape {tuple(images.shape)}")
    flip = torch.rand(images.shape[0], generator=generator, device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(dims=(3,)), images)
