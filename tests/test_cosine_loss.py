"""Tests of the spatial cosine contrastive loss against hand-computed values."""

import pytest
import torch

from forwardforward.objectives import cosine_contrastive_loss


def test_cosine_loss_hand_computed():
    # Two channels at two positions (a 1 x 2 map) for one sample.
    # Position 0: u = (3, 4), v = (4, 3): cos = 24 / 25 = 0.96.
    # Position 1: u = (1, 0), v = (0, 1): cos = 0.
    pos = torch.tensor([[[[3.0, 1.0]], [[4.0, 0.0]]]])  # (1, 2, 1, 2)
    neg = torch.tensor([[[[4.0, 0.0]], [[3.0, 1.0]]]])
    # margin 0.5: mean(max(0, 0.96 - 0.5), max(0, 0 - 0.5)) = 0.46 / 2
    assert cosine_contrastive_loss(pos, neg, margin=0.5).item() == pytest.approx(0.23)
    # margin 0: mean(0.96, 0)
    assert cosine_contrastive_loss(pos, neg, margin=0.0).item() == pytest.approx(0.48)
    # margin -1 keeps every term: mean(1.96, 1.0)
    assert cosine_contrastive_loss(pos, neg, margin=-1.0).item() == pytest.approx(1.48)


def test_cosine_loss_flat_features_one_position():
    pos = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    neg = torch.tensor([[1.0, 0.0], [-1.0, -1.0]])
    # cos = 1 and -1; with margin 0 only the first counts: mean(1, 0) = 0.5
    assert cosine_contrastive_loss(pos, neg).item() == pytest.approx(0.5)


def test_cosine_loss_zero_vector_is_finite():
    pos = torch.zeros(2, 3, 2, 2, requires_grad=True)
    neg = torch.rand(2, 3, 2, 2)
    loss = cosine_contrastive_loss(pos, neg)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(pos.grad).all()


def test_cosine_loss_gradient_lowers_similarity():
    pos = torch.rand(4, 5, 3, 3, dtype=torch.float64, requires_grad=True)
    neg = torch.rand(4, 5, 3, 3, dtype=torch.float64)
    before = cosine_contrastive_loss(pos, neg)
    before.backward()
    with torch.no_grad():
        after = cosine_contrastive_loss(pos - 0.1 * pos.grad, neg)
    assert after < before


def test_cosine_loss_gradcheck():
    pos = torch.rand(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    neg = torch.rand(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: cosine_contrastive_loss(a, b, 0.2), (pos, neg))


def test_cosine_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="one negative per positive"):
        cosine_contrastive_loss(torch.rand(2, 3), torch.rand(3, 3))
    with pytest.raises(ValueError, match="margin must lie"):
        cosine_contrastive_loss(torch.rand(2, 3), torch.rand(2, 3), margin=1.5)
    with pytest.raises(ValueError, match="batch and a channel axis"):
        cosine_contrastive_loss(torch.rand(3), torch.rand(3))
