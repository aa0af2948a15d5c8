"""Values and gradients of the pure JAX functions, against hand-computed values and PyTorch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from forwardforward import normalization, objectives
from forwardforward.jax import functional as F
from forwardforward.jax.labels import (
    hard_wrong_labels,
    overlay_labels,
    overlay_neutral,
    random_wrong_labels,
)
from forwardforward.labels import overlay_labels as torch_overlay_labels


def test_goodness_hand_computed():
    h = jnp.array([[1.0, 2.0, 0.0], [3.0, 0.0, 4.0]])
    np.testing.assert_allclose(F.sum_of_squares(h), [5.0, 25.0])
    np.testing.assert_allclose(F.mean_of_squares(h), [5.0 / 3, 25.0 / 3], rtol=1e-6)


def test_goodness_gradient_is_twice_activity():
    h = jnp.array([[1.0, -2.0, 0.5]])
    grad = jax.grad(lambda a: F.sum_of_squares(a).sum())(h)
    np.testing.assert_allclose(grad, 2 * h)


def test_get_goodness_unknown_name():
    with pytest.raises(ValueError, match="cube"):
        F.get_goodness("cube")


def test_threshold_loss_hand_computed():
    loss = F.threshold_loss(jnp.array([3.0]), jnp.array([1.0]), threshold=2.0)
    expected = np.log1p(np.exp(-1.0)) + np.log1p(np.exp(-1.0))
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_threshold_loss_matches_torch_value_and_gradient():
    rng = np.random.default_rng(0)
    g_pos, g_neg = rng.uniform(0, 60, 16).astype(np.float32), rng.uniform(0, 60, 24).astype(np.float32)
    value, grads = jax.value_and_grad(F.threshold_loss, argnums=(0, 1))(jnp.array(g_pos), jnp.array(g_neg), 30.0)
    t_pos = torch.tensor(g_pos, requires_grad=True)
    t_neg = torch.tensor(g_neg, requires_grad=True)
    t_value = objectives.threshold_loss(t_pos, t_neg, 30.0)
    t_value.backward()
    np.testing.assert_allclose(value, t_value.item(), rtol=1e-6)
    np.testing.assert_allclose(grads[0], t_pos.grad.numpy(), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(grads[1], t_neg.grad.numpy(), rtol=1e-5, atol=1e-8)


def test_threshold_loss_finite_for_huge_goodness():
    value, grad = jax.value_and_grad(F.threshold_loss)(jnp.array([1e7]), jnp.array([-1e7]), 10.0)
    assert np.isfinite(value)
    assert np.isfinite(grad).all()


def test_symba_loss_matches_torch():
    g_pos, g_neg = np.array([1.0, 3.0, -2.0], np.float32), np.array([2.0, 0.5, -1.0], np.float32)
    value = F.symba_loss(jnp.array(g_pos), jnp.array(g_neg), alpha=4.0)
    expected = objectives.symba_loss(torch.tensor(g_pos), torch.tensor(g_neg), alpha=4.0).item()
    np.testing.assert_allclose(value, expected, rtol=1e-6)


def test_symba_loss_rejects_unpaired_batches():
    with pytest.raises(ValueError, match="one negative per positive"):
        F.symba_loss(jnp.ones(3), jnp.ones(4))


def test_rms_normalize_matches_torch_and_keeps_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
    out = np.asarray(F.rms_normalize(jnp.array(x)))
    np.testing.assert_allclose(out, normalization.rms_normalize(torch.tensor(x)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(np.mean(out[0] ** 2), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(out[1], [0.0, 0.0])


def test_peer_update_and_loss_match_torch():
    rng = np.random.default_rng(1)
    h = rng.uniform(0, 2, (8, 5)).astype(np.float32)
    z = rng.normal(size=(8, 5)).astype(np.float32)
    peer = normalization.PeerNormalization(5, strength=0.03)
    peer.update(torch.tensor(h))
    mean = F.peer_update(jnp.full(5, 0.5), jnp.array(h), momentum=0.9)
    np.testing.assert_allclose(mean, peer.running_mean.numpy(), rtol=1e-6)

    t_z = torch.tensor(z, requires_grad=True)
    peer.loss(t_z, gradient_scale=2.0).backward()
    grad = jax.grad(F.peer_loss)(jnp.array(z), mean, 0.03, 2.0)
    np.testing.assert_allclose(grad, t_z.grad.numpy(), rtol=1e-5, atol=1e-9)
    # The pull is the same for every sample: -2 * 0.03 * (mean_k m_k - m_j) / batch.
    m = np.asarray(mean)
    np.testing.assert_allclose(grad[3], -2 * 0.03 * (m.mean() - m) / 8, rtol=1e-5, atol=1e-9)


def test_overlay_labels_matches_torch():
    images = np.random.default_rng(2).uniform(size=(4, 20)).astype(np.float32)
    labels = np.array([0, 3, 9, 3])
    out = overlay_labels(jnp.array(images), jnp.array(labels), 10, strength=2.0)
    expected = torch_overlay_labels(torch.tensor(images), torch.tensor(labels), 10, strength=2.0)
    np.testing.assert_array_equal(np.asarray(out), expected.numpy())


def test_overlay_neutral_value():
    out = np.asarray(overlay_neutral(jnp.ones((2, 12)), 10))
    np.testing.assert_allclose(out[:, :10], 0.1)
    np.testing.assert_array_equal(out[:, 10:], 1.0)


def test_overlay_rejects_bad_shapes():
    with pytest.raises(ValueError, match="flattened"):
        overlay_labels(jnp.ones((2, 3, 4)), jnp.zeros(2, jnp.int32), 3)
    with pytest.raises(ValueError, match="at least one feature per class"):
        overlay_neutral(jnp.ones((2, 5)), 10)
    with pytest.raises(ValueError, match="labels must have shape"):
        overlay_labels(jnp.ones((2, 12)), jnp.zeros(3, jnp.int32), 10)


def test_random_wrong_labels_never_true():
    labels = jnp.arange(1000) % 10
    wrong = np.asarray(random_wrong_labels(jax.random.PRNGKey(0), labels, 10))
    assert (wrong != np.asarray(labels)).all()
    assert set(np.unique(wrong)) == set(range(10))


def test_hard_wrong_labels_never_true_and_follow_scores():
    labels = jnp.zeros(2000, jnp.int32)
    scores = jnp.tile(jnp.array([9.0, 0.0, np.log(3.0), 0.0]), (2000, 1))
    wrong = np.asarray(hard_wrong_labels(jax.random.PRNGKey(1), scores, labels))
    assert (wrong != 0).all()
    # Wrong-class weights 1 : 3 : 1, so class 2 takes about 60 %.
    assert 0.55 < np.mean(wrong == 2) < 0.65


def test_hard_wrong_labels_uniform_for_nan_scores():
    labels = jnp.full(3000, 1, jnp.int32)
    scores = jnp.full((3000, 3), jnp.nan)
    wrong = np.asarray(hard_wrong_labels(jax.random.PRNGKey(2), scores, labels))
    assert set(np.unique(wrong)) == {0, 2}
    assert 0.45 < np.mean(wrong == 0) < 0.55


def test_hard_wrong_labels_rejects_bad_input():
    with pytest.raises(ValueError, match="temperature"):
        hard_wrong_labels(jax.random.PRNGKey(0), jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), temperature=0.0)
    with pytest.raises(ValueError, match="scores must be"):
        hard_wrong_labels(jax.random.PRNGKey(0), jnp.zeros((2, 3)), jnp.zeros(5, jnp.int32))
