"""Image negatives: corruption by augmentation and the learned adversarial generator."""

import pytest
import torch

from forwardforward.negatives import AdversarialNegativeGenerator, corrupt_images


def test_corruption_changes_images_within_range():
    images = torch.rand(8, 784)
    out = corrupt_images(images, (1, 28, 28), generator=torch.Generator().manual_seed(0))
    assert out.shape == (8, 784)
    assert float(out.min()) >= 0.0
    assert float(out.max()) <= 1.0
    assert not torch.allclose(out, images)


def test_corruption_with_everything_off_is_identity():
    images = torch.rand(4, 784)
    out = corrupt_images(images, (1, 28, 28), noise_std=0.0, mask_fraction=0.0, max_shift=0)
    assert torch.equal(out, images)


def test_mask_only_zeroes_about_the_fraction():
    images = torch.rand(50, 784) + 0.01
    out = corrupt_images(images.clamp(max=1), (1, 28, 28), noise_std=0.0, mask_fraction=0.25, max_shift=0,
                         generator=torch.Generator().manual_seed(0))
    fraction = (out == 0).float().mean().item()
    assert 0.22 < fraction < 0.28


@pytest.mark.parametrize("kwargs", [{"mask_fraction": 1.0}, {"noise_std": -0.1}])
def test_corruption_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        corrupt_images(torch.rand(2, 784), (1, 28, 28), **kwargs)


def test_corruption_rejects_wrong_shape():
    with pytest.raises(ValueError, match="image_shape"):
        corrupt_images(torch.rand(2, 100), (1, 28, 28))


def test_generator_learns_to_raise_the_score_only_through_its_own_weights():
    torch.manual_seed(0)
    scorer = torch.nn.Linear(20, 1)
    generator = AdversarialNegativeGenerator(20, latent_dim=4, hidden=16)
    generator.configure_optimizer(lr=0.01)
    rng = torch.Generator().manual_seed(0)

    def score(x):
        return scorer(x).squeeze(1)

    with torch.no_grad():
        before = score(generator.sample(256, torch.Generator().manual_seed(5))).mean()
    for _ in range(100):
        generator.train_step(score, 32, rng)
    with torch.no_grad():
        after = score(generator.sample(256, torch.Generator().manual_seed(5))).mean()
    assert after > before + 0.1
    assert scorer.weight.grad is None
    sample = generator.sample(3).detach()
    assert sample.shape == (3, 20)
    assert float(sample.min()) >= 0.0
    assert float(sample.max()) <= 1.0


def test_generator_needs_an_optimizer():
    with pytest.raises(RuntimeError, match="configure_optimizer"):
        AdversarialNegativeGenerator(5).train_step(lambda x: x.sum(1), 2)
