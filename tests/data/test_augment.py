"""Jitter augmentation: seeded shifts of up to N pixels, computed for the whole batch at once."""

import pytest
import torch

from forwardforward.data.augment import jitter_images


def shifted(image, dy, dx):
    """Reference: `(height, width)` image shifted down by dy and right by dx, zeros shifted in."""
    out = torch.zeros_like(image)
    height, width = image.shape
    for r in range(height):
        for c in range(width):
            if 0 <= r - dy < height and 0 <= c - dx < width:
                out[r, c] = image[r - dy, c - dx]
    return out


def find_shift(original, result, max_shift):
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            if torch.equal(shifted(original, dy, dx), result):
                return dy, dx
    return None


def test_jitter_is_a_shift_within_range():
    images = torch.rand(40, 2 * 8 * 8) + 0.1  # no zero pixels, so every shift is distinguishable

    out = jitter_images(images, (2, 8, 8), 2, torch.Generator().manual_seed(0))

    found = set()
    for i in range(images.shape[0]):
        source, result = images[i].view(2, 8, 8), out[i].view(2, 8, 8)
        shift = find_shift(source[0], result[0], 2)
        assert shift is not None, f"image {i} is not a shift of at most 2 pixels"
        assert torch.equal(shifted(source[1], *shift), result[1]), "channels were shifted differently"
        found.add(shift)
    # 40 draws from 25 shifts cover several, including non-zero ones in both directions.
    assert len(found) >= 10
    assert any(dy < 0 for dy, _ in found) and any(dx > 0 for _, dx in found)


def test_jitter_deterministic_by_seed():
    images = torch.rand(10, 784)

    first = jitter_images(images, (1, 28, 28), 2, torch.Generator().manual_seed(4))
    second = jitter_images(images, (1, 28, 28), 2, torch.Generator().manual_seed(4))
    other = jitter_images(images, (1, 28, 28), 2, torch.Generator().manual_seed(5))

    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_zero_jitter_returns_input():
    images = torch.rand(3, 784)

    assert jitter_images(images, (1, 28, 28), 0) is images


def test_jitter_rejects_bad_input():
    with pytest.raises(ValueError, match="max_shift"):
        jitter_images(torch.rand(2, 784), (1, 28, 28), -1)
    with pytest.raises(ValueError, match="784"):
        jitter_images(torch.rand(2, 700), (1, 28, 28), 2)
