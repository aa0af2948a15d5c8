"""Hybrid-image negatives of unsupervised FF: the blurred mask and the mixing of two images."""

import pytest
import torch

from forwardforward.negatives import hybrid_images, hybrid_mask


def neighbour_agreement(mask):
    """Fraction of horizontally and vertically adjacent pixel pairs with the same mask value."""
    horizontal = (mask[:, :, 1:] == mask[:, :, :-1]).float().mean()
    vertical = (mask[:, 1:, :] == mask[:, :-1, :]).float().mean()
    return float((horizontal + vertical) / 2)


def test_mask_values_are_zero_or_one():
    mask = hybrid_mask(8, 28, 28, blur_passes=6, generator=torch.Generator().manual_seed(0))

    assert mask.shape == (8, 28, 28)
    assert mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}


def test_mask_has_large_regions():
    generator = torch.Generator().manual_seed(0)
    raw = hybrid_mask(32, 28, 28, blur_passes=0, generator=generator)
    blurred = hybrid_mask(32, 28, 28, blur_passes=6, generator=generator)

    # Independent bits agree with a neighbour half the time; a mask of large regions mostly does.
    assert neighbour_agreement(raw) == pytest.approx(0.5, abs=0.03)
    assert neighbour_agreement(blurred) > 0.85
    # Both regions are present in a typical mask, not one value everywhere.
    assert 0.2 < float(blurred.mean()) < 0.8


def test_more_passes_give_larger_regions():
    few = hybrid_mask(32, 28, 28, blur_passes=2, generator=torch.Generator().manual_seed(1))
    many = hybrid_mask(32, 28, 28, blur_passes=10, generator=torch.Generator().manual_seed(1))

    assert neighbour_agreement(many) > neighbour_agreement(few)


def test_mask_deterministic_by_seed():
    first = hybrid_mask(4, 28, 28, generator=torch.Generator().manual_seed(5))
    second = hybrid_mask(4, 28, 28, generator=torch.Generator().manual_seed(5))
    other = hybrid_mask(4, 28, 28, generator=torch.Generator().manual_seed(6))

    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_mask_rejects_bad_sizes():
    with pytest.raises(ValueError, match="blur_passes"):
        hybrid_mask(2, 28, 28, blur_passes=-1)
    with pytest.raises(ValueError, match="height=0"):
        hybrid_mask(2, 0, 28)


def test_hybrid_pixels_come_from_two_sources():
    batch = 6
    # Each image has one constant value, so every output pixel names its source image.
    values = torch.arange(1, batch + 1, dtype=torch.float32)
    images = values.view(batch, 1).expand(batch, 784).clone()

    hybrids = hybrid_images(images, (1, 28, 28), generator=torch.Generator().manual_seed(3))

    assert hybrids.shape == images.shape
    for i in range(batch):
        sources = set(hybrids[i].unique().tolist())
        assert values[i].item() in sources
        assert len(sources) == 2, f"hybrid {i} mixes {sources}, expected its own image and one other"


def test_hybrid_partner_is_another_sample():
    # Disjoint value ranges, so no pixel of one image can equal a pixel of the other.
    first = torch.rand(784, generator=torch.Generator().manual_seed(0))
    images = torch.stack([first, first + 2.0])

    for seed in range(5):
        hybrids = hybrid_images(images, (1, 28, 28), generator=torch.Generator().manual_seed(seed))
        from_self = torch.isclose(hybrids, images).float().mean(dim=1)
        from_other = torch.isclose(hybrids, images.flip(0)).float().mean(dim=1)
        assert torch.allclose(from_self + from_other, torch.ones(2))
        assert (from_other > 0).all()


def test_hybrid_uses_one_mask_for_all_channels():
    images = torch.stack([torch.zeros(3 * 16), torch.ones(3 * 16)])

    hybrids = hybrid_images(images, (3, 4, 4), blur_passes=1, generator=torch.Generator().manual_seed(0))
    planes = hybrids.view(2, 3, 16)

    assert torch.equal(planes[:, 0], planes[:, 1])
    assert torch.equal(planes[:, 0], planes[:, 2])


def test_hybrid_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        hybrid_images(torch.rand(1, 784), (1, 28, 28))
    with pytest.raises(ValueError, match="784"):
        hybrid_images(torch.rand(4, 780), (1, 28, 28))
