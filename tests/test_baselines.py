"""The backprop baseline: end-to-end gradients, the same architectures as FF, and its trainer."""

import torch
import torch.nn.functional as F

from forwardforward.architectures import build_ff_network
from forwardforward.baselines import BackpropNetwork
from forwardforward.config import LocalLayerConfig, ModelConfig
from forwardforward.optim import OptimizerConfig

LOCAL_MODEL = ModelConfig(
    kind="local",
    local=(LocalLayerConfig(channels=4, kernel=10, stride=6), LocalLayerConfig(channels=5, kernel=2)),
)


def test_backprop_passes_gradients_to_first_layer():
    torch.manual_seed(0)
    network = BackpropNetwork.from_config(ModelConfig(hidden=(16, 16, 16)), (1, 28, 28), 10)
    images, labels = torch.rand(8, 784), torch.randint(0, 10, (8,))

    F.cross_entropy(network(images), labels).backward()

    for module in network.hidden:
        assert module.weight.grad is not None
        assert module.weight.grad.abs().sum() > 0


def test_ff_loss_leaves_lower_layers_without_gradients():
    torch.manual_seed(0)
    network = build_ff_network(ModelConfig(hidden=(16, 16, 16)), (1, 28, 28), 10)
    for block in network.blocks:
        block.configure_optimizer(OptimizerConfig())
    x_pos, x_neg = torch.rand(8, 784), torch.rand(8, 784)
    h_pos, h_neg = network.normalize(x_pos), network.normalize(x_neg)

    # The top block's loss, on inputs computed by the blocks below with gradients enabled.
    for block in network.blocks[:-1]:
        h_pos, h_neg = network.normalize(block(h_pos)), network.normalize(block(h_neg))
    loss = network.blocks[-1].local_loss(h_pos, h_neg)[0]
    loss.backward()

    assert network.blocks[-1].module.weight.grad.abs().sum() > 0
    for block in network.blocks[:-1]:
        assert block.module.weight.grad is None


def test_local_baseline_has_ff_layer_shapes():
    ff = build_ff_network(LOCAL_MODEL, (1, 28, 28), 10)
    baseline = BackpropNetwork.from_config(LOCAL_MODEL, (1, 28, 28), 10)

    assert [b.module.weight.shape for b in ff.blocks] == [m.weight.shape for m in baseline.hidden]
    assert baseline(torch.rand(3, 784)).shape == (3, 10)


def test_local_baseline_passes_gradients_through_local_layers():
    baseline = BackpropNetwork.from_config(LOCAL_MODEL, (1, 28, 28), 10)

    F.cross_entropy(baseline(torch.rand(4, 784)), torch.tensor([0, 1, 2, 3])).backward()

    assert baseline.hidden[0].weight.grad.abs().sum() > 0
