"""Tests of the label embeddings for inputs of any shape: noise patterns, channels, pixels."""

import pytest
import torch

from forwardforward.labels import ChannelLabels, NoiseLabels, PixelLabels, overlay_labels


def test_noise_patterns_reproducible_from_seed():
    first = NoiseLabels(10, (3, 8, 8), amplitude=0.5, seed=4)
    second = NoiseLabels(10, (3, 8, 8), amplitude=0.5, seed=4)
    other = NoiseLabels(10, (3, 8, 8), amplitude=0.5, seed=5)
    assert torch.equal(first.patterns, second.patterns)
    assert not torch.equal(first.patterns, other.patterns)


def test_noise_patterns_fixed_per_class():
    labelling = NoiseLabels(10, (20,), amplitude=0.3, seed=0)
    images = torch.rand(6, 20)
    labels = torch.tensor([2, 2, 7, 0, 7, 9])
    added = labelling.embed(images, labels) - images
    for row, label in enumerate(labels.tolist()):
        assert torch.allclose(added[row], 0.3 * labelling.patterns[label])
    # Two calls with the same labels add the same patterns: nothing is redrawn.
    assert torch.equal(labelling.embed(images, labels), labelling.embed(images, labels))
    # Different classes have different patterns.
    assert not torch.allclose(labelling.patterns[0], labelling.patterns[1])


def test_noise_neutral_carries_no_pattern():
    labelling = NoiseLabels(10, (1, 4, 4), amplitude=1.0)
    images = torch.rand(3, 1, 4, 4)
    assert torch.equal(labelling.embed_neutral(images), images)


def test_noise_patterns_saved_in_state_dict():
    trained = NoiseLabels(10, (12,), seed=1)
    fresh = NoiseLabels(10, (12,), seed=99)
    fresh.load_state_dict(trained.state_dict())
    assert "patterns" in trained.state_dict()
    assert torch.equal(fresh.patterns, trained.patterns)


def test_noise_every_label_blocks():
    labelling = NoiseLabels(10, (5,), amplitude=0.2)
    images = torch.rand(4, 5)
    out = labelling.embed_every_label(images).view(10, 4, 5)
    for c in range(10):
        assert torch.allclose(out[c], labelling.embed(images, torch.full((4,), c)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1, "shape": (4,)}, "at least 2 classes"),
        ({"num_classes": 10, "shape": ()}, "positive sizes"),
        ({"num_classes": 10, "shape": (4,), "amplitude": 0.0}, "amplitude must be positive"),
    ],
)
def test_noise_labels_reject_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NoiseLabels(**kwargs)


def test_noise_labels_reject_bad_inputs():
    labelling = NoiseLabels(10, (6,))
    with pytest.raises(ValueError, match="inputs of shape"):
        labelling.embed(torch.rand(2, 7), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        labelling.embed(torch.rand(2, 6), torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="labels must have shape"):
        labelling.embed(torch.rand(2, 6), torch.tensor([0]))


def test_channel_labels_add_planes():
    labelling = ChannelLabels(10, strength=2.0)
    images = torch.rand(2, 3, 5, 5)
    out = labelling.embed(images, torch.tensor([1, 8]))
    assert out.shape == (2, 13, 5, 5)
    assert torch.equal(out[:, :3], images)
    assert torch.all(out[0, 3 + 1] == 2.0)
    assert torch.all(out[1, 3 + 8] == 2.0)
    assert out[0, 3:].sum().item() == pytest.approx(2.0 * 25)


def test_channel_labels_neutral_is_uniform():
    out = ChannelLabels(10, strength=1.0).embed_neutral(torch.rand(2, 3, 4, 4))
    assert torch.allclose(out[:, 3:], torch.full((2, 10, 4, 4), 0.1))


def test_channel_labels_need_images():
    with pytest.raises(ValueError, match="batch, channels, height, width"):
        ChannelLabels(10).embed(torch.rand(2, 30), torch.tensor([0, 1]))


def test_pixel_labels_match_overlay():
    images = torch.rand(3, 3, 4, 4)
    labels = torch.tensor([0, 5, 9])
    out = PixelLabels(10).embed(images, labels)
    assert out.shape == images.shape
    assert torch.equal(out.flatten(1), overlay_labels(images.flatten(1), labels, 10))
