"""The JAX model: locality, prediction, compilation and 20-step parity with the PyTorch core."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from forwardforward.config import load_config
from forwardforward.errors import UsageError
from forwardforward.jax.convert import state_from_torch, weights_as_numpy
from forwardforward.jax.model import FFModel, FFSpec
from forwardforward.jax.optim import gain_schedule
from forwardforward.training.trainer import Trainer, TrainingData

# Hinton's Matlab recipe, narrowed so that the tests stay fast.
SMALL = ["model.hidden=[96,80,64]", "train.device='cpu'"]
PARITY_STEPS = 20
PARITY_BATCH = 50
# Parity bound: relative difference in float32, per loss value and per weight tensor.
PARITY_RTOL = 1e-4


def make_model(overrides=(), in_features=784, num_classes=10):
    config = load_config("hinton-matlab-mnist", SMALL + list(overrides))
    spec = FFSpec.from_config(config, in_features, num_classes)
    gain = gain_schedule(config.train.lr_schedule, config.train.epochs, 500)
    return config, FFModel(spec, config.optimizer, config.readout.optimizer, gain)


def mnist_like(n, seed=0):
    """Images in [0, 1] with a class-dependent bright block, and their labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.uniform(0, 0.4, (n, 28, 28)).astype(np.float32)
    for i, label in enumerate(labels):
        row, column = 7 + 7 * (label // 4), 7 * (label % 4)
        images[i, row : row + 7, column : column + 7] = 1.0
    return images.reshape(n, 784), labels


def test_blocks_are_local():
    _, model = make_model()
    state = model.init(jax.random.PRNGKey(0))
    x = jnp.asarray(mnist_like(8)[0])

    def top_loss(params):
        return jnp.sum(model.network.apply(params, x)[-1][1] ** 2)

    grads = jax.grad(top_loss)(state.params)["params"]
    assert float(jnp.abs(grads["block0"]["Dense_0"]["kernel"]).max()) == 0.0
    assert float(jnp.abs(grads["block1"]["Dense_0"]["kernel"]).max()) == 0.0
    assert float(jnp.abs(grads["block2"]["Dense_0"]["kernel"]).max()) > 0.0


def test_summed_loss_gives_each_block_its_own_gradient():
    _, model = make_model()
    state = model.init(jax.random.PRNGKey(1))
    x = jnp.asarray(mnist_like(16)[0])
    grads, _ = jax.grad(model._blocks_loss, has_aux=True)(state.params, state.peer_means, x, 8)

    def own_total(params, index):
        return model._blocks_loss(params, state.peer_means, x, 8)[1][2][index]

    for index in range(3):
        name = f"block{index}"
        alone = jax.grad(own_total)(state.params, index)["params"][name]["Dense_0"]["kernel"]
        summed = grads["params"][name]["Dense_0"]["kernel"]
        np.testing.assert_allclose(summed, alone, rtol=1e-5, atol=1e-7, err_msg=name)


def test_second_step_does_not_recompile():
    _, model = make_model()
    state = model.init(jax.random.PRNGKey(2))
    images, labels = mnist_like(30)
    images, labels = jnp.asarray(images), jnp.asarray(labels, jnp.int32)
    for step in range(3):
        key = jax.random.fold_in(jax.random.PRNGKey(3), step)
        state, stats = model.train_step(state, images[step * 10 : (step + 1) * 10], labels[step * 10 : (step + 1) * 10], key)
    jax.block_until_ready(stats)
    assert model.trace_count == 1


def test_train_step_rejects_empty_batch():
    _, model = make_model()
    state = model.init(jax.random.PRNGKey(7))
    with pytest.raises(ValueError, match="non-empty"):
        model.train_step(state, jnp.zeros((0, 784)), jnp.zeros(0, jnp.int32), jax.random.PRNGKey(8))


def test_goodness_per_label_matches_torch_network():
    config, model = make_model()
    images, _ = mnist_like(6)
    trainer = Trainer(config, TrainingData(torch.tensor(images), torch.zeros(6, dtype=torch.long), {}, 10), torch.device("cpu"))
    state = state_from_torch(model, trainer.network, trainer.readout)
    ours = np.asarray(model.goodness_per_label(state.params, jnp.asarray(images)))
    theirs = trainer.network.goodness_per_label(torch.tensor(images)).numpy()
    assert ours.shape == (6, 3, 10)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)


def test_spec_rejects_greedy_schedule():
    config = load_config("hinton-matlab-mnist", SMALL + ["train.schedule='greedy'"])
    with pytest.raises(UsageError, match="simultaneous"):
        FFSpec.from_config(config, 784, 10)


def test_spec_rejects_readout_negatives_without_readout():
    config = load_config("hinton-matlab-mnist", SMALL + ["readout.enabled=false"])
    with pytest.raises(UsageError, match="needs the read-out"):
        FFSpec.from_config(config, 784, 10)


@pytest.mark.parametrize("negatives", ["hard-readout", "random"])
def test_training_step_lowers_loss(negatives):
    overrides = ["negatives.kind='random'"] if negatives == "random" else []
    _, model = make_model(overrides)
    state = model.init(jax.random.PRNGKey(4))
    images, labels = mnist_like(400, seed=5)
    images, labels = jnp.asarray(images), jnp.asarray(labels, jnp.int32)
    losses = []
    for epoch in range(3):
        total = 0.0
        for b in range(8):
            batch = slice(b * 50, (b + 1) * 50)
            state, stats = model.train_step(state, images[batch], labels[batch], jax.random.PRNGKey(100 * epoch + b))
            total += float(stats[0:9:3].sum())
        losses.append(total)
    assert losses[-1] < losses[0]


def _torch_weights(trainer):
    weights = {k: v.numpy() for k, v in trainer.network.state_dict().items() if "peer" not in k}
    weights.update({f"readout.{k}": v.numpy() for k, v in trainer.readout.state_dict().items()})
    return weights


def _relative(ours, theirs):
    return float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-12))


def test_parity_with_torch_for_20_steps():
    config, model = make_model()
    images, labels = mnist_like(PARITY_STEPS * PARITY_BATCH, seed=6)
    t_images, t_labels = torch.tensor(images), torch.tensor(labels)
    trainer = Trainer(config, TrainingData(t_images, t_labels, {}, 10), torch.device("cpu"))
    trainer._apply_gain(1)
    state = state_from_torch(model, trainer.network, trainer.readout)

    # Record the negatives that the PyTorch trainer draws, and give the same ones to JAX.
    drawn = []
    draw = trainer._negative_labels

    def record(*args):
        drawn.append(draw(*args))
        return drawn[-1]

    trainer._negative_labels = record
    for step in range(PARITY_STEPS):
        batch = slice(step * PARITY_BATCH, (step + 1) * PARITY_BATCH)
        theirs = trainer.train_batch(t_images[batch], t_labels[batch], None).numpy()
        state, ours = model.train_step_with_negatives(
            state, jnp.asarray(images[batch]), jnp.asarray(labels[batch], jnp.int32),
            jnp.asarray(drawn[-1].numpy(), jnp.int32),
        )
        losses = list(range(0, 9, 3)) + [9]  # each block's loss and the read-out's loss
        np.testing.assert_allclose(np.asarray(ours)[losses], theirs[losses], rtol=PARITY_RTOL, err_msg=f"step {step}")

    torch_weights = _torch_weights(trainer)
    for name, ours in weights_as_numpy(state).items():
        assert _relative(ours, torch_weights[name]) < PARITY_RTOL, name
    for block, mean in zip(trainer.network.blocks, state.peer_means):
        np.testing.assert_allclose(np.asarray(mean), block.peer.running_mean.numpy(), rtol=PARITY_RTOL)
