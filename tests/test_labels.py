import pytest
import torch

from forwardforward.labels import overlay_every_label, overlay_labels, overlay_neutral


def test_overlay_writes_one_hot_with_strength():
    images = torch.rand(3, 20)
    out = overlay_labels(images, torch.tensor([0, 4, 9]), 10, strength=1.0)
    expected = torch.zeros(3, 10)
    expected[0, 0] = expected[1, 4] = expected[2, 9] = 1.0
    assert torch.equal(out[:, :10], expected)
    assert torch.equal(out[:, 10:], images[:, 10:])


def test_overlay_ignores_image_maximum():
    images = torch.full((2, 12), 0.3)
    out = overlay_labels(images, torch.tensor([1, 2]), 10, strength=1.0)
    assert out[0, 1].item() == 1.0


def test_overlay_leaves_input_untouched():
    images = torch.rand(2, 12)
    copy = images.clone()
    overlay_labels(images, torch.tensor([1, 2]), 10)
    assert torch.equal(images, copy)


def test_neutral_label_is_uniform():
    out = overlay_neutral(torch.rand(2, 15), 10, strength=1.0)
    assert torch.allclose(out[:, :10], torch.full((2, 10), 0.1))


def test_every_label_blocks_are_per_class():
    images = torch.rand(4, 16)
    out = overlay_every_label(images, 10).view(10, 4, 16)
    for c in range(10):
        assert torch.equal(out[c], overlay_labels(images, torch.full((4,), c), 10))


def test_overlay_rejects_bad_shapes():
    with pytest.raises(ValueError, match="flatten"):
        overlay_labels(torch.rand(2, 1, 28, 28), torch.tensor([0, 1]), 10)
    with pytest.raises(ValueError, match="at least one feature per class"):
        overlay_labels(torch.rand(2, 5), torch.tensor([0, 1]), 10)
    with pytest.raises(ValueError, match="shape"):
        overlay_labels(torch.rand(2, 20), torch.tensor([0, 1, 2]), 10)
