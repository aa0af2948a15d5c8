"""The recurrent top-down network: its damped synchronous update, prediction and training step."""

import pytest
import torch
from torch import nn

from forwardforward.config import ModelConfig, RecurrentConfig
from forwardforward.errors import UsageError
from forwardforward.layers import LocalBlock, TwoSourceInput
from forwardforward.optim import OptimizerConfig
from forwardforward.variants.hinton_recurrent import RecurrentFFNetwork


def rms(v):
    return v / (v.square().mean(dim=1, keepdim=True).sqrt() + 1e-12)


def linear(in_features, out_features, generator):
    layer = nn.Linear(in_features, out_features).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(out_features, in_features, generator=generator, dtype=torch.float64))
        layer.bias.copy_(torch.randn(out_features, generator=generator, dtype=torch.float64))
    return layer


@pytest.fixture
def small_network():
    """Input 4, hidden layers of 3 and 2 units, 2 labels on top, 2 iterations, both averaged."""
    generator = torch.Generator().manual_seed(0)
    up1, down1 = linear(4, 3, generator), linear(2, 3, generator)
    up2, down2 = linear(3, 2, generator), linear(2, 2, generator)
    blocks = [
        LocalBlock(TwoSourceInput(up1, down1, 4), 3),
        LocalBlock(TwoSourceInput(up2, down2, 3), 2),
    ]
    network = RecurrentFFNetwork(blocks, num_classes=2, iterations=2, damping=0.3, eval_window=(1, 2))
    return network, (up1, down1, up2, down2)


def test_two_steps_match_hand_computation(small_network):
    network, (up1, down1, up2, down2) = small_network
    x = torch.tensor([[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, 0.0, -0.5]], dtype=torch.float64)
    label = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    relu = torch.relu

    with torch.no_grad():
        # Initial states: one bottom-up pass, zero top-down input (so only the top-down bias).
        s1 = relu(up1(rms(x)) + down1.bias)
        s2 = relu(up2(rms(s1)) + down2.bias)
        goodness = []
        for _ in range(2):
            new1 = relu(up1(rms(x)) + down1(rms(s2)))
            new2 = relu(up2(rms(s1)) + down2(rms(label)))  # the old s1: updates are synchronous
            s1, s2 = 0.3 * s1 + 0.7 * new1, 0.3 * s2 + 0.7 * new2
            goodness.append(torch.stack([s1.square().sum(1), s2.square().sum(1)], dim=1))
        expected_goodness = (goodness[0] + goodness[1]) / 2

    activities, got_goodness = network.run(x, label)

    assert torch.allclose(got_goodness, expected_goodness, atol=1e-12)
    assert activities[1].shape == (2, 2)


def test_goodness_per_label_matches_runs(small_network):
    network, _ = small_network
    x = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    per_label = network.goodness_per_label(x)

    assert per_label.shape == (3, 2, 2)  # (batch, blocks, classes)
    for label in range(2):
        top = network.label_vectors(torch.full((3,), label)).double()
        assert torch.allclose(per_label[:, :, label], network.run(x, top)[1])


def test_layer_inputs_are_detached(small_network):
    network, _ = small_network
    x = torch.randn(2, 4, dtype=torch.float64)
    states = [torch.rand(2, 3, dtype=torch.float64, requires_grad=True),
              torch.rand(2, 2, dtype=torch.float64, requires_grad=True)]

    inputs = network.layer_inputs(x, torch.eye(2, dtype=torch.float64), states)

    assert [tuple(i.shape) for i in inputs] == [(2, 4 + 2), (2, 3 + 2)]
    assert not any(i.requires_grad for i in inputs)


def test_train_step_updates_each_layer(small_network):
    network, _ = small_network
    for block in network.blocks:
        block.configure_optimizer(OptimizerConfig(lr=0.01))
    before = [p.detach().clone() for p in network.parameters()]
    images = torch.randn(8, 4, dtype=torch.float64).repeat(2, 1)
    top = network.label_vectors(torch.tensor([0, 1] * 4 + [1, 0] * 4)).double()

    stats = network.train_step(images, top, batch_pos=8)

    assert stats.shape == (2, 3)
    assert torch.isfinite(stats).all()
    assert all(not torch.equal(b, p) for b, p in zip(before, network.parameters()))


def test_from_config_rejects_shrinking_local_maps():
    model = ModelConfig(kind="local", local=(_layer(3, 5, 0), _layer(3, 5, 2)))
    with pytest.raises(UsageError, match="input size 32 x 32"):
        RecurrentFFNetwork.from_config(model, RecurrentConfig(enabled=True), (3, 32, 32), 10)


def test_from_config_local_top_down_shapes():
    model = ModelConfig(kind="local", local=(_layer(3, 5, 2), _layer(2, 3, 1)))
    network = RecurrentFFNetwork.from_config(model, RecurrentConfig(enabled=True), (3, 8, 8), 10)
    x = torch.rand(2, 3 * 64)

    goodness = network.goodness_per_label(x)

    assert network.widths == [3 * 64, 2 * 64]
    assert goodness.shape == (2, 2, 10)


def test_rejects_bad_window():
    block = LocalBlock(TwoSourceInput(nn.Linear(4, 3), nn.Linear(2, 3), 4), 3)
    with pytest.raises(UsageError, match="eval window"):
        RecurrentFFNetwork([block], 2, iterations=4, eval_window=(3, 5))
    with pytest.raises(UsageError, match="damping"):
        RecurrentFFNetwork([block], 2, damping=1.0)


def _layer(channels, kernel, padding):
    from forwardforward.config import LocalLayerConfig

    return LocalLayerConfig(channels=channels, kernel=kernel, padding=padding)
