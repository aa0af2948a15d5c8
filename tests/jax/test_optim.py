"""The Optax optimizers against their PyTorch counterparts, and the learning-rate gain."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from forwardforward.errors import UsageError
from forwardforward.jax.optim import build_optimizer, gain_schedule, smoothed_sgd
from forwardforward.optim import OPTIMIZERS, OptimizerConfig
from forwardforward.optim import build_optimizer as build_torch_optimizer
from forwardforward.training.schedules import hinton_gain


def _run_both(config, steps=5):
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(3, 4)).astype(np.float32)
    bias = rng.normal(size=(3,)).astype(np.float32)
    grads = [(rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(3,)).astype(np.float32))
             for _ in range(steps)]

    linear = torch.nn.Linear(4, 3)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(weight))
        linear.bias.copy_(torch.tensor(bias))
    torch_opt = build_torch_optimizer(linear, config)
    for g_w, g_b in grads:
        linear.weight.grad, linear.bias.grad = torch.tensor(g_w), torch.tensor(g_b)
        torch_opt.step()

    params = {"kernel": jnp.array(weight), "bias": jnp.array(bias)}
    tx = build_optimizer(config)
    state = tx.init(params)
    for g_w, g_b in grads:
        updates, state = tx.update({"kernel": jnp.array(g_w), "bias": jnp.array(g_b)}, state, params)
        params = optax.apply_updates(params, updates)
    return params, linear


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_matches_torch(name):
    config = OptimizerConfig(name=name, lr=0.05, momentum=0.9, weight_decay=0.01)
    params, linear = _run_both(config)
    np.testing.assert_allclose(params["kernel"], linear.weight.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(params["bias"], linear.bias.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_smoothed_sgd_hand_computed():
    # s = 0.1 g; p <- p - lr (s + wc p) for the matrix, p - lr s for the vector.
    tx = smoothed_sgd(0.5, smoothing=0.9, weight_cost=0.2)
    params = {"w": jnp.ones((1, 1)), "b": jnp.ones(1)}
    grads = {"w": jnp.full((1, 1), 2.0), "b": jnp.full(1, 2.0)}
    updates, state = tx.update(grads, tx.init(params), params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(new["w"], [[1 - 0.5 * (0.2 + 0.2)]], rtol=1e-6)
    np.testing.assert_allclose(new["b"], [1 - 0.5 * 0.2], rtol=1e-6)
    assert int(state.count) == 1


def test_smoothed_sgd_needs_params():
    tx = smoothed_sgd(0.1)
    params = {"w": jnp.ones((2, 2))}
    with pytest.raises(ValueError, match="needs params"):
        tx.update(params, tx.init(params))


def test_smoothed_sgd_rejects_bad_smoothing():
    with pytest.raises(ValueError, match="smoothing"):
        smoothed_sgd(0.1, smoothing=1.0)


def test_gain_schedule_matches_hinton_gain():
    steps_per_epoch, total = 7, 10
    gain = jax.jit(gain_schedule("hinton", total, steps_per_epoch))
    for epoch in range(1, total + 1):
        for step in ((epoch - 1) * steps_per_epoch, epoch * steps_per_epoch - 1):
            np.testing.assert_allclose(gain(jnp.asarray(step)), hinton_gain(epoch, total), rtol=1e-6)


def test_gain_schedule_rejects_unknown_name():
    with pytest.raises(UsageError, match="cosine"):
        gain_schedule("cosine", 10, 5)


def test_build_optimizer_rejects_unknown_name():
    with pytest.raises(UsageError, match="lion"):
        build_optimizer(OptimizerConfig(name="lion"))
