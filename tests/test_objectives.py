import pytest
import torch
import torch.nn.functional as F

from forwardforward.objectives import OBJECTIVES, get_objective, symba_loss, threshold_loss
from forwardforward.errors import UsageError


def test_threshold_loss_equals_bce_with_logits():
    torch.manual_seed(0)
    g_pos = (torch.rand(16, dtype=torch.float64) * 20).requires_grad_()
    g_neg = (torch.rand(16, dtype=torch.float64) * 20).requires_grad_()
    theta = 10.0
    ours = threshold_loss(g_pos, g_neg, theta)
    reference = F.binary_cross_entropy_with_logits(
        g_pos - theta, torch.ones(16, dtype=torch.float64)
    ) + F.binary_cross_entropy_with_logits(g_neg - theta, torch.zeros(16, dtype=torch.float64))
    assert torch.allclose(ours, reference)
    grad_ours = torch.autograd.grad(ours, (g_pos, g_neg))
    grad_ref = torch.autograd.grad(reference, (g_pos, g_neg))
    assert torch.allclose(grad_ours[0], grad_ref[0])
    assert torch.allclose(grad_ours[1], grad_ref[1])


def test_threshold_loss_gradient_is_sigmoid_form():
    # d/dG_pos softplus(theta - G) = -(1 - p), p = sigmoid(G - theta); batch mean divides by n.
    g_pos = torch.tensor([9.0, 11.0], dtype=torch.float64, requires_grad=True)
    g_neg = torch.tensor([10.0], dtype=torch.float64, requires_grad=True)
    threshold_loss(g_pos, g_neg, 10.0).backward()
    expected_pos = -(1 - torch.sigmoid(g_pos.detach() - 10.0)) / 2
    assert torch.allclose(g_pos.grad, expected_pos)
    assert torch.allclose(g_neg.grad, torch.tensor([0.5], dtype=torch.float64))


def test_threshold_loss_gradcheck():
    g_pos = torch.rand(5, dtype=torch.float64, requires_grad=True)
    g_neg = torch.rand(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: threshold_loss(a, b, 0.5), (g_pos, g_neg))


def test_threshold_loss_stable_for_huge_goodness():
    g = torch.tensor([1e6, -1e6, 0.0], requires_grad=True)
    loss = threshold_loss(g, g, 1000.0)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(g.grad).all()
    # softplus(1e6 - 1000) is 999000 to float32 precision, not inf.
    assert loss.item() == pytest.approx((0 + 1e6 + 1000 + 999000 + 0 + 1000) / 3, rel=1e-5)


def test_symba_loss_hand_value():
    loss = symba_loss(torch.tensor([2.0]), torch.tensor([1.0]), alpha=4.0)
    assert loss.item() == pytest.approx(F.softplus(torch.tensor(-4.0)).item())


def test_symba_loss_rejects_unpaired():
    with pytest.raises(ValueError, match="one negative per positive"):
        symba_loss(torch.zeros(3), torch.zeros(4))


def test_registry_lookup():
    assert set(OBJECTIVES) == {"threshold", "symba", "split_threshold"}
    with pytest.raises(UsageError, match="symba"):
        get_objective("hinge")
