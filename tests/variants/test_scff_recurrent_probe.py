"""Recurrent SCFF (no gradient across time steps) and the linear probe on frozen features."""

import pytest
import torch

from forwardforward.negatives import self_contrastive_pairs
from forwardforward.variants.scff import SCFFBlock, SCFFNetwork, SharedPairLinear
from forwardforward.variants.scff_probe import (
    extract_features,
    layer_features,
    probe_error,
    probe_lr_gain,
    train_probe,
)
from forwardforward.variants.scff_recurrent import SCFFRecurrentBlock


def _sequences(batch=4, steps=5, features=3):
    torch.manual_seed(0)
    x = torch.randn(batch, steps, features)
    x_pos, x_neg = self_contrastive_pairs(x, dim=2, generator=torch.Generator().manual_seed(0))
    return x_pos.requires_grad_(), x_neg.requires_grad_()


@pytest.mark.parametrize("reverse", [False, True])
def test_recurrent_step_loss_has_no_gradient_from_earlier_steps(reverse):
    block = SCFFRecurrentBlock(3, 6, reverse=reverse)
    x_pos, x_neg = _sequences()
    # local_loss detaches its inputs, so the test reads the per-step graph through the block's
    # step function on inputs that require gradients.
    state = torch.zeros(4, 6)
    frames = list(range(5))[::-1] if reverse else list(range(5))
    losses = []
    for t in frames:
        z = block.step(x_pos[:, t], state)
        losses.append(block.goodness_fn(torch.relu(z)).mean())
        state = block.activation(z)  # not detached here: the block itself must cut the graph
    last = losses[-1]
    grad = torch.autograd.grad(last, x_pos, retain_graph=True)[0]
    current = frames[-1]
    assert grad[:, current].abs().sum() > 0
    others = [t for t in range(5) if t != current]
    assert torch.all(grad[:, others] == 0)


def test_recurrent_local_loss_trains_all_weights_and_returns_final_states():
    block = SCFFRecurrentBlock(3, 6)
    x_pos, x_neg = _sequences()
    loss, h_pos, h_neg, metrics = block.local_loss(x_pos, x_neg)
    loss.backward()
    assert h_pos.shape == (4, 6)
    assert h_neg.shape == (4, 6)
    assert not h_pos.requires_grad
    assert x_pos.grad is None  # inputs are detached inside the block
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())
    assert set(metrics) == {"loss", "goodness_pos", "goodness_neg"}


def test_recurrent_forward_matches_final_state_of_local_loss():
    block = SCFFRecurrentBlock(3, 6, reverse=True)
    x_pos, x_neg = _sequences()
    _, h_pos, _, _ = block.local_loss(x_pos, x_neg)
    assert torch.allclose(block(x_pos.detach()), h_pos)


def test_probe_features_are_frozen_and_standardised():
    torch.manual_seed(0)
    network = SCFFNetwork([SCFFBlock(SharedPairLinear(5, 7), 7), SCFFBlock(torch.nn.Linear(7, 4), 4)])
    before = [p.detach().clone() for p in network.parameters()]
    inputs = torch.rand(30, 10)
    features = extract_features(network.activities, inputs, [0, 1], batch_size=8)
    assert features.shape == (30, 11)
    assert not features.requires_grad
    assert torch.allclose(features[:, :7].mean(dim=1), torch.zeros(30), atol=1e-5)
    labels = torch.randint(0, 3, (30,))
    train_probe(features, labels, 3, epochs=3, batch_size=10)
    assert all(p.grad is None for p in network.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, network.parameters()))


def test_probe_learns_separable_features_and_is_reproducible():
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (200,))
    features = torch.nn.functional.one_hot(labels, 4).float() * 3 + 0.1 * torch.randn(200, 4)
    probe = train_probe(features, labels, 4, epochs=10, batch_size=20, lr=0.05, seed=3)
    again = train_probe(features, labels, 4, epochs=10, batch_size=20, lr=0.05, seed=3)
    assert probe_error(probe, features, labels) == 0.0
    assert torch.equal(probe.linear.weight, again.linear.weight)


def test_conv_features_are_pooled_then_flattened():
    activity = torch.rand(2, 3, 8, 8)
    assert layer_features(activity, pool_size=2).shape == (2, 3 * 4 * 4)
    assert layer_features(activity).shape == (2, 3 * 8 * 8)


def test_probe_lr_halves_at_fixed_fractions():
    assert probe_lr_gain(0, 50) == 1.0
    assert probe_lr_gain(10, 50) == 0.5
    assert probe_lr_gain(49, 50) == 0.5**7
