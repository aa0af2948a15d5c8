import pytest
import torch

from forwardforward.errors import UsageError
from forwardforward.goodness import GOODNESS
from forwardforward.objectives import OBJECTIVES
from forwardforward.layers import FFLinear, LocalBlock
from forwardforward.network import FFNetwork
from forwardforward.optim import OptimizerConfig, SmoothedSGD, build_optimizer


def make_network(widths=(20, 16, 12, 8), **kwargs):
    torch.manual_seed(0)
    network = FFNetwork.fully_connected(widths[0], widths[1:], num_classes=4, **kwargs)
    for block in network.blocks:
        block.configure_optimizer(OptimizerConfig(name="sgd", lr=0.1, weight_decay=0.0))
    return network


def test_upper_loss_leaves_lower_gradients_untouched():
    network = make_network(peer_strength=0.03)
    x_pos, x_neg = torch.rand(5, 20), torch.rand(5, 20)
    h_pos, h_neg = network.normalize(x_pos), network.normalize(x_neg)
    activities = []
    for block in network.blocks:
        a_pos, a_neg = block(h_pos), block(h_neg)  # graph kept on purpose
        activities.append((h_pos, h_neg))
        h_pos, h_neg = network.normalize(a_pos), network.normalize(a_neg)
    top = network.blocks[-1]
    loss, _, _, _ = top.local_loss(*activities[-1])
    loss.backward()
    for lower in network.blocks[:-1]:
        for p in lower.parameters():
            assert p.grad is None
    assert all(p.grad is not None for p in top.module.parameters())


def test_train_step_changes_only_own_block():
    network = make_network()
    before = [[p.detach().clone() for p in b.parameters()] for b in network.blocks]
    x = network.normalize(torch.rand(6, 20))
    a_pos, a_neg, _ = network.blocks[0].train_step(x, x.flip(0))
    network.blocks[1].train_step(network.normalize(a_pos), network.normalize(a_neg))
    changed = [any(not torch.equal(p, q) for p, q in zip(b.parameters(), old))
               for b, old in zip(network.blocks, before)]
    assert changed == [True, True, False]


def test_train_step_returns_pre_update_activities():
    network = make_network()
    block = network.blocks[0]
    x = network.normalize(torch.rand(6, 20))
    expected = block(x).detach()
    h_pos, _, _ = block.train_step(x, x.flip(0))
    assert torch.equal(h_pos, expected)


def test_local_loss_metrics_keys_and_detached():
    network = make_network()
    x = torch.rand(4, 20)
    loss, h_pos, h_neg, metrics = network.blocks[0].local_loss(x, x)
    assert set(metrics) == {"loss", "goodness_pos", "goodness_neg"}
    assert all(not v.requires_grad for v in metrics.values())
    assert loss.requires_grad
    assert h_pos.shape == (4, 16)
    assert h_neg.shape == (4, 16)


def test_optimizer_groups_own_parameters_only():
    network = make_network()
    for block in network.blocks:
        own = {id(p) for p in block.module.parameters()}
        grouped = {id(p) for g in block.optimizer.param_groups for p in g["params"]}
        assert grouped == own


def test_weight_decay_skips_biases():
    block = FFLinear(6, 4)
    optimizer = build_optimizer(block.module, OptimizerConfig(name="smoothed_sgd", weight_decay=0.5))
    assert isinstance(optimizer, SmoothedSGD)
    decay = {p.dim(): g["weight_cost"] for g in optimizer.param_groups for p in g["params"]}
    assert decay == {2: 0.5, 1: 0.0}


def test_smoothed_sgd_hand_computed_steps():
    w = torch.nn.Parameter(torch.tensor([1.0]))
    optimizer = SmoothedSGD([w], lr=0.1, smoothing=0.5, weight_cost=0.2)
    w.grad = torch.tensor([2.0])
    optimizer.step()
    # s = 0.5 * 2 = 1; w = 1 - 0.1 * (1 + 0.2 * 1) = 0.88
    assert w.item() == pytest.approx(0.88)
    w.grad = torch.tensor([0.0])
    optimizer.step()
    # s = 0.5; w = 0.88 - 0.1 * (0.5 + 0.2 * 0.88) = 0.8124
    assert w.item() == pytest.approx(0.8124)


def test_hinton_init_scale():
    torch.manual_seed(0)
    block = FFLinear(2000, 1000, init="hinton")
    assert block.module.weight.std().item() == pytest.approx(2000 ** -0.5, rel=0.02)
    assert torch.equal(block.module.bias, torch.zeros(1000))


def test_block_rejects_bad_settings():
    with pytest.raises(UsageError, match="goodness"):
        FFLinear(4, 4, goodness="nope")
    with pytest.raises(UsageError, match="init"):
        FFLinear(4, 4, init="xavier")
    with pytest.raises(UsageError, match="optimizer"):
        build_optimizer(torch.nn.Linear(2, 2), OptimizerConfig(name="lbfgs"))
    with pytest.raises(RuntimeError, match="configure_optimizer"):
        LocalBlock(torch.nn.Linear(4, 3), 3).train_step(torch.rand(2, 4), torch.rand(2, 4))


def test_custom_module_block_trains():
    conv_like = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 5))
    block = LocalBlock(conv_like, 5, objective="symba")
    block.configure_optimizer(OptimizerConfig(name="adam", lr=1e-2, weight_decay=0.0))
    x_pos, x_neg = torch.rand(16, 8) + 1, torch.rand(16, 8) - 1
    first = block.train_step(x_pos, x_neg)[2]["loss"].item()
    for _ in range(50):
        last = block.train_step(x_pos, x_neg)[2]["loss"].item()
    assert last < first


@pytest.mark.parametrize("goodness", sorted(GOODNESS))
@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_every_registered_pair_trains(goodness, objective):
    torch.manual_seed(0)
    block = FFLinear(10, 6, goodness=goodness, objective=objective, peer_strength=0.03)
    block.configure_optimizer(OptimizerConfig(name="sgd", lr=0.05, weight_decay=0.0))
    x_pos, x_neg = torch.rand(32, 10) + 0.5, torch.rand(32, 10) - 0.5
    losses = [block.train_step(x_pos, x_neg)[2]["loss"].item() for _ in range(40)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
