"""Batched image augmentations on tensors: random shifts and horizontal flips.

Each function draws one independent transformation per sample from an explicit
`torch.Generator`, so a seeded run draws the same augmentations after a resume.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
