"""Forward learning of GNNs: augmentation, losses, locality, early stopping and learning."""

import math

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("torch_geometric")
pytest.importorskip("scipy")

from forwardforward.objectives import threshold_loss, virtual_node_cross_entropy
from forwardforward.variants.forward_gnn import (
    LINK_METHODS,
    NODE_METHODS,
    GraphConfig,
    LinkForward,
    PeakMemoryMeter,
    SingleForward,
    TopToLoss,
    append_labels,
    fit_layerwise,
    make_virtual_nodes,
    roc_auc,
    run_link_method,
    run_node_method,
    sample_negative_edges,
    training_assignment,
)
from forwardforward.errors import UsageError
from forwardforward.training.early_stopping import EarlyStopping


# -- virtual-node augmentation -------------------------------------------------------------


def test_virtual_links_only_for_training_nodes(node_task):
    virtual = make_virtual_nodes(node_task.num_classes, 12, node_task.num_nodes, seed=0)
    assignment = training_assignment(node_task.labels, node_task.split.train)
    links = virtual.links(assignment, "both")
    n = node_task.num_nodes
    to_virtual = links[:, links[1] >= n]
    from_virtual = links[:, links[0] >= n]
    train_ids = torch.nonzero(node_task.split.train).flatten()
    assert torch.equal(to_virtual[0].sort().values, train_ids)
    assert torch.equal(to_virtual[1] - n, node_task.labels[to_virtual[0]])
    assert torch.equal(from_virtual.flip(0).sort(dim=1).values, to_virtual.sort(dim=1).values)
    assert links.shape[1] == 2 * int(node_task.split.train.sum())


def test_virtual_links_one_direction(node_task):
    virtual = make_virtual_nodes(node_task.num_classes, 12, node_task.num_nodes, seed=0)
    assignment = training_assignment(node_task.labels, node_task.split.train)
    links = virtual.links(assignment, "to_virtual")
    assert bool((links[1] >= node_task.num_nodes).all())
    assert bool((links[0] < node_task.num_nodes).all())


def test_virtual_links_reject_bad_assignment(node_task):
    virtual = make_virtual_nodes(3, 12, node_task.num_nodes, seed=0)
    with pytest.raises(ValueError, match="must be in"):
        virtual.links(torch.full((node_task.num_nodes,), 3))
    with pytest.raises(ValueError, match="shape"):
        virtual.links(torch.zeros(5, dtype=torch.long))


def test_virtual_features_stay_frozen(node_task, small_config):
    method = SingleForward(node_task, small_config, seed=0)
    expected = make_virtual_nodes(3, 12, node_task.num_nodes, seed=0).features
    method.start_layer(0)
    for _ in range(5):
        method.train_step(0)
    n = node_task.num_nodes
    assert torch.equal(method.x[n:], expected)
    assert not method.x.requires_grad
    parameters = {id(p) for p in method.layers.parameters()}
    assert id(method.x) not in parameters


def test_append_labels_one_hot_and_uniform():
    x = torch.ones(3, 2)
    out = append_labels(x, torch.tensor([1, -1, 0]), num_classes=2)
    assert torch.equal(out, torch.tensor([[1.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.5, 0.5], [1.0, 1.0, 1.0, 0.0]]))


# -- losses on hand-made values ----------------------------------------------------------------


def test_virtual_node_cross_entropy_by_hand():
    nodes = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    virtual = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    # logits [[1, 0], [0, 2]]: losses log(1 + e^-1) and log(1 + e^-2)
    expected = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-2))) / 2
    assert virtual_node_cross_entropy(nodes, virtual, labels).item() == pytest.approx(expected, rel=1e-6)
    halved = (math.log(1 + math.exp(-0.5)) + math.log(1 + math.exp(-1))) / 2
    assert virtual_node_cross_entropy(nodes, virtual, labels, 2.0).item() == pytest.approx(halved, rel=1e-6)


def test_virtual_node_cross_entropy_rejects_bad_input():
    with pytest.raises(ValueError, match="same width"):
        virtual_node_cross_entropy(torch.ones(2, 3), torch.ones(2, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        virtual_node_cross_entropy(torch.ones(2, 2), torch.ones(2, 2), torch.zeros(2, dtype=torch.long), 0.0)


def test_link_dot_product_loss_on_hand_graph(link_task):
    method = LinkForward(link_task, GraphConfig(hidden=2, heads=1), "dot-product", seed=0)
    # Four nodes on a path 0-1-2-3 with hand-set 2-d activities.
    activity = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [3.0, 0.0]])
    edges = torch.tensor([[0, 1], [1, 2]])  # pairs (0, 1) and (1, 2)
    non_edges = torch.tensor([[0, 2], [2, 3]])  # pairs (0, 2) and (2, 3)
    s_pos = method.pair_scores(activity, edges)
    s_neg = method.pair_scores(activity, non_edges)
    assert s_pos.tolist() == [1.0, 2.0]
    assert s_neg.tolist() == [0.0, 0.0]
    loss = threshold_loss(s_pos, s_neg, 0.0)
    by_hand = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-2))) / 2 + math.log(2)
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)
    bce = F.binary_cross_entropy_with_logits(torch.cat([s_pos, s_neg]), torch.tensor([1.0, 1.0, 0.0, 0.0]))
    assert loss.item() == pytest.approx(2 * bce.item(), rel=1e-6)


def test_link_ff_goodness_on_hand_graph(link_task):
    method = LinkForward(link_task, GraphConfig(hidden=2, heads=1, threshold=1.0), "ff", seed=0)
    activity = torch.tensor([[1.0, 2.0], [3.0, 1.0]])
    goodness = method.pair_scores(activity, torch.tensor([[0], [1]]))
    assert goodness.tolist() == [3.0**2 + 2.0**2]


def test_roc_auc_by_hand():
    assert roc_auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])) == pytest.approx(0.75)
    assert roc_auc(torch.tensor([0.5, 0.5]), torch.tensor([1, 0])) == pytest.approx(0.5)
    assert roc_auc(torch.tensor([0.9, 0.1]), torch.tensor([1, 0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(torch.tensor([0.1, 0.2]), torch.tensor([1, 1]))


def test_negative_edges_avoid_edges_and_loops():
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    pairs = sample_negative_edges(edge_index, 4, 200, torch.Generator().manual_seed(0))
    existing = {tuple(e) for e in edge_index.t().tolist()}
    assert pairs.shape == (2, 200)
    assert not any(tuple(p) in existing for p in pairs.t().tolist())
    assert bool((pairs[0] != pairs[1]).all())


def test_negative_edges_fail_on_complete_graph():
    full = torch.tensor([[i, j] for i in range(3) for j in range(3) if i != j]).t()
    with pytest.raises(ValueError, match="too dense"):
        sample_negative_edges(full, 3, 1, torch.Generator().manual_seed(0))


# -- locality ---------------------------------------------------------------------------------


def test_single_forward_layer_leaves_lower_layer_alone(node_task, small_config):
    method = SingleForward(node_task, small_config, seed=0)
    method.start_layer(0)
    method.train_step(0)
    method.finish_layer(0)
    before = {k: v.clone() for k, v in method.layers[0].state_dict().items()}
    method.start_layer(1)
    for _ in range(3):
        method.train_step(1)
    for name, value in method.layers[0].state_dict().items():
        assert torch.equal(value, before[name]), name
    assert all(p.grad is None for p in method.layers[0].parameters())


def test_top_to_loss_gradient_stays_local(node_task, small_config):
    method = TopToLoss(node_task, small_config, num_layers=3, seed=0)
    counts = {}
    for k, layer in enumerate(method.module):
        for name, p in layer.named_parameters():
            counts[(k, name)] = 0
            p.register_hook(lambda grad, key=(k, name): counts.__setitem__(key, counts[key] + 1))
    method.train_step()
    # Each parameter receives exactly one gradient, from its own layer's loss; a leak from the
    # layer above would add a second one.
    assert set(counts.values()) == {1}


def test_goodness_classifier_locality(node_task, small_config):
    from forwardforward.variants.forward_gnn import GoodnessNodeClassifier

    method = GoodnessNodeClassifier(node_task, small_config, "virtual-nodes", seed=0)
    method.start_layer(0)
    method.train_step(0)
    method.finish_layer(0)
    method.start_layer(1)
    method.train_step(1)
    assert all(p.grad is None for p in method.layers[0].parameters())
    assert all(p.grad is not None for p in method.layers[1].parameters())


# -- early stopping ---------------------------------------------------------------------------


def test_early_stopping_keeps_best_state():
    module = torch.nn.Linear(2, 1)
    stopper = EarlyStopping(patience=2)
    snapshots = {}
    for step, score in enumerate([0.5, 0.7, 0.6, 0.65], start=1):
        with torch.no_grad():
            module.weight.fill_(step)
        snapshots[step] = module.weight.clone()
        stop = stopper.step(score, module, step)
        assert stop == (step == 4)
    stopper.restore(module)
    assert stopper.best_step == 2
    assert torch.equal(module.weight, snapshots[2])


def test_early_stopping_rejects_bad_patience():
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)


class _ScriptedMethod:
    """A one-layer method whose validation scores follow a script; each step adds 1 to the weights."""

    def __init__(self, scores):
        self.layers = torch.nn.ModuleList()
        self.script = list(scores)
        self.calls = 0

    def start_layer(self, index):
        layer = torch.nn.Linear(1, 1)
        with torch.no_grad():
            layer.weight.zero_()
        self.layers.append(layer)

    def train_step(self, index):
        with torch.no_grad():
            self.layers[index].weight.add_(1.0)
        return torch.tensor(0.5)

    def scores(self, index, with_test=True):
        value = self.script[min(self.calls, len(self.script) - 1)] if not with_test else 0.0
        self.calls += 0 if with_test else 1
        result = {"valid": value}
        if with_test:
            result = {"valid": float(self.layers[index].weight.item()), "test": 0.0}
        return result

    def finish_layer(self, index):
        pass

    def cached_bytes(self):
        return 0


def test_fit_layerwise_restores_best_epoch():
    method = _ScriptedMethod([10.0, 30.0, 20.0, 25.0, 21.0, 22.0])
    config = GraphConfig(max_epochs=50, patience=3)
    result = fit_layerwise(method, 1, config)
    row = result.depths[0]
    assert row.best_epoch == 2
    assert row.epochs == 5  # stopped after 3 epochs without improvement
    assert row.valid == 2.0  # the weights after epoch 2 were restored


# -- learning and equivalences -----------------------------------------------------------------


@pytest.mark.parametrize("method", list(NODE_METHODS))
def test_node_methods_learn(node_task, small_config, method):
    result = run_node_method(method, node_task, small_config, num_layers=2, seed=0)
    assert result.depths[-1].depth == 2
    assert result.depths[-1].test > 60.0  # 3 classes: chance is about 33 %
    assert result.depths[-1].peak_memory_bytes > 0


@pytest.mark.parametrize("method", list(LINK_METHODS))
def test_link_methods_learn(link_task, small_config, method):
    result = run_link_method(method, link_task, small_config, num_layers=2, seed=0)
    assert result.depths[-1].test > 60.0  # ROC-AUC in percent; chance is 50


@pytest.mark.parametrize("conv", ["gcn", "sage", "gat"])
def test_single_forward_every_convolution(node_task, conv):
    config = GraphConfig(conv=conv, hidden=16, heads=2, max_epochs=30, patience=10, lr=0.02)
    result = run_node_method("single-forward", node_task, config, num_layers=2, seed=1)
    assert [row.depth for row in result.depths] == [1, 2]
    assert result.depths[-1].test > 60.0


def test_greedy_prefix_equals_shallower_run(node_task, small_config):
    deep = run_node_method("single-forward", node_task, small_config, num_layers=2, seed=3)
    shallow = run_node_method("single-forward", node_task, small_config, num_layers=1, seed=3)
    assert deep.depths[0].test == shallow.depths[0].test
    assert deep.depths[0].best_epoch == shallow.depths[0].best_epoch


def test_unknown_method_rejected(node_task, small_config):
    with pytest.raises(UsageError, match="unknown node method"):
        run_node_method("magic", node_task, small_config, 2, 0)
    with pytest.raises(UsageError, match="at least 1"):
        run_node_method("single-forward", node_task, small_config, 0, 0)


def test_config_rejects_bad_values():
    with pytest.raises(UsageError, match="unknown convolution"):
        GraphConfig(conv="cheb")
    with pytest.raises(UsageError, match="divisible"):
        GraphConfig(conv="gat", hidden=10, heads=4)
    with pytest.raises(UsageError, match="patience"):
        GraphConfig(patience=0)


# -- memory --------------------------------------------------------------------------------


def test_memory_meter_counts_saved_storage_once():
    weight = torch.randn(1000, requires_grad=True)
    meter = PeakMemoryMeter()

    def step():
        (weight * weight).sum().backward()  # mul saves `weight` twice: one storage

    meter.measure(step, trained=[])
    assert meter.peak_bytes == 4000
    module = torch.nn.Linear(10, 10)  # 110 parameters, 4 copies of 4 bytes each
    meter.measure(lambda: None, trained=[module])
    assert meter.peak_bytes == 4000
    meter.measure(step, trained=[module], extra_bytes=100)
    assert meter.peak_bytes == 4000 + 110 * 16 + 100


def test_single_forward_memory_flat_backprop_grows(node_task):
    config = GraphConfig(hidden=64, heads=2, max_epochs=3, patience=3)
    greedy = run_node_method("single-forward", node_task, config, num_layers=4, seed=0)
    peaks = [row.peak_memory_bytes for row in greedy.depths]
    assert peaks[3] <= 1.1 * peaks[1]
    shallow = run_node_method("backprop", node_task, config, num_layers=1, seed=0)
    deep = run_node_method("backprop", node_task, config, num_layers=4, seed=0)
    assert deep.depths[0].peak_memory_bytes > 1.5 * shallow.depths[0].peak_memory_bytes
