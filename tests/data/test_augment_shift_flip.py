"""Batched random shifts and flips."""

import pytest
import torch

from forwardforward.data.augment import random_flip, random_shift


def test_shift_is_a_translation_with_zero_fill():
    images = torch.rand(16, 2, 6, 6) + 1.0  # no zeros of its own
    shifted = random_shift(images, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape
    for i in range(16):
        matches = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                padded = torch.nn.functional.pad(images[i], (2, 2, 2, 2))
                window = padded[:, 2 + dy : 2 + dy + 6, 2 + dx : 2 + dx + 6]
                matches.append(torch.equal(window, shifted[i]))
        assert sum(matches) == 1


def test_shift_draws_per_sample():
    images = torch.rand(32, 1, 8, 8) + 1.0
    shifted = random_shift(images, 2, torch.Generator().manual_seed(0))
    zeros_per_image = (shifted == 0).flatten(1).sum(dim=1)
    assert len(set(zeros_per_image.tolist())) > 1


def test_zero_shift_is_identity():
    images = torch.rand(3, 1, 5, 5)
    assert random_shift(images, 0) is images


@pytest.mark.parametrize("shape, shift", [((3, 5, 5), 1), ((3, 1, 5, 5), 5), ((3, 1, 5, 5), -1)])
def test_shift_rejects_bad_input(shape, shift):
    with pytest.raises(ValueError):
        random_shift(torch.rand(shape), shift)


def test_flip_mirrors_about_half():
    images = torch.rand(200, 1, 4, 4)
    flipped = random_flip(images, torch.Generator().manual_seed(0))
    mirrored = torch.tensor([torch.equal(f, i.flip(dims=(2,))) for f, i in zip(flipped, images)])
    unchanged = torch.tensor([torch.equal(f, i) for f, i in zip(flipped, images)])
    assert torch.all(mirrored | unchanged)
    assert 60 < int(mirrored.sum()) < 140
