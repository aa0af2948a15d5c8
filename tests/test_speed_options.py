"""The speed options must not change what is computed: fused passes, compile, bfloat16, freed gradients."""

import pytest
import torch

from forwardforward.config import load_config
from forwardforward.errors import UsageError
from forwardforward.layers import FFLinear
from forwardforward.optim import OptimizerConfig
from forwardforward.training.trainer import Trainer, TrainingData


def make_block(seed=0, peer_strength=0.03):
    torch.manual_seed(seed)
    block = FFLinear(20, 16, peer_strength=peer_strength)
    block.configure_optimizer(OptimizerConfig())
    return block


def test_fused_pass_matches_separate_passes():
    # local_loss runs positives and negatives through one matrix product; computing them
    # apart must give the same loss and the same weight gradients.
    block = make_block(peer_strength=0.0)
    x_pos, x_neg = torch.rand(6, 20), torch.rand(4, 20)

    fused, _, _, _ = block.local_loss(x_pos, x_neg)
    fused_grads = torch.autograd.grad(fused, list(block.module.parameters()))

    g_pos = block.goodness(block(x_pos))
    g_neg = block.goodness(block(x_neg))
    separate = block.objective(g_pos, g_neg)
    separate_grads = torch.autograd.grad(separate, list(block.module.parameters()))

    torch.testing.assert_close(fused, separate)
    for a, b in zip(fused_grads, separate_grads):
        torch.testing.assert_close(a, b)


def test_train_step_frees_gradients():
    block = make_block()
    block.train_step(torch.rand(5, 20), torch.rand(5, 20))
    assert all(p.grad is None for p in block.parameters())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside torch.compile
def test_compiled_loss_matches_eager():
    eager, compiled = make_block(seed=3), make_block(seed=3)
    compiled.compile_local_loss()
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        x_pos, x_neg = torch.rand(8, 20, generator=generator), torch.rand(8, 20, generator=generator)
        _, _, metrics_eager = eager.train_step(x_pos, x_neg)
        _, _, metrics_compiled = compiled.train_step(x_pos, x_neg)
        torch.testing.assert_close(metrics_compiled["loss"], metrics_eager["loss"], rtol=1e-5, atol=1e-6)
    for a, b in zip(compiled.parameters(), eager.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(compiled.peer.running_mean, eager.peer.running_mean)


def test_bfloat16_pre_activation_is_float32():
    block = make_block()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = block.pre_activation(torch.rand(3, 20))
        _, h_pos, _, _ = block.local_loss(torch.rand(3, 20), torch.rand(3, 20))
    assert z.dtype == torch.float32
    assert h_pos.dtype == torch.float32


def tiny_trainer(precision):
    config = load_config("mnist-quick", [
        "model.hidden=[32, 32]", "train.batch_size=20", f"train.precision={precision}", "train.device=cpu",
    ])
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(100, 784, generator=generator)
    labels = torch.randint(0, 10, (100,), generator=generator)
    data = TrainingData(images, labels, {"test": (images[:40], labels[:40])}, 10)
    return Trainer(config, data, torch.device("cpu"))


def test_bfloat16_training_tracks_float32():
    full, half = tiny_trainer("float32"), tiny_trainer("bfloat16")
    record_full = full.train_epoch(progress=False)
    record_half = half.train_epoch(progress=False)
    # bfloat16 keeps 8 bits of mantissa, so one epoch agrees to about 1 %, not bit for bit.
    assert record_half["layer1/loss"] == pytest.approx(record_full["layer1/loss"], rel=0.05)
    weights_full = full.network.blocks[0].module.weight
    weights_half = half.network.blocks[0].module.weight
    assert weights_half.dtype == torch.float32
    assert (weights_half - weights_full).abs().max() < 0.05 * weights_full.abs().max()
    assert set(half.evaluate()) == set(full.evaluate())


def test_invalid_precision_is_rejected():
    with pytest.raises(UsageError, match="train.precision"):
        load_config("mnist-quick", ["train.precision=float8"])


@pytest.mark.parametrize("strength", [1.0, 2.5])
def test_shared_first_layer_matches_full_pass(strength):
    from forwardforward.labels import overlay_every_label
    from forwardforward.network import FFNetwork

    torch.manual_seed(0)
    network = FFNetwork.fully_connected(30, [16, 12], num_classes=5, label_strength=strength)
    images = torch.rand(7, 30)
    shared = network.goodness_per_label(images)

    full = network.activities(overlay_every_label(images, 5, strength))
    expected = torch.stack([block.goodness(a).view(5, 7) for block, a in zip(network.blocks, full)])
    torch.testing.assert_close(shared, expected.permute(2, 0, 1), rtol=1e-5, atol=1e-5)
