"""Backprop baselines of the forward-learning GNNs: same layers, trained end to end."""

import pytest
import torch

pytest.importorskip("torch_geometric")

from forwardforward.baselines.gnn_backprop import BackpropNodeClassifier, GNNStack  # noqa: E402
from forwardforward.variants.forward_gnn import GraphConfig, SingleForward  # noqa: E402


def test_stack_starts_from_forward_method_weights(node_task):
    config = GraphConfig(hidden=16, heads=2)
    stack = GNNStack(node_task.x.shape[1], config, num_layers=2, seed=4)
    method = SingleForward(node_task, config, seed=4)
    method.start_layer(0)
    for name, value in method.layers[0].state_dict().items():
        assert torch.equal(stack.layers[0].state_dict()[name], value), name


def test_backprop_gradient_reaches_first_layer(node_task):
    model = BackpropNodeClassifier(node_task, GraphConfig(hidden=16, heads=2), num_layers=3, seed=0)
    model.train_step()
    first = model.module["stack"].layers[0]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in first.parameters())


def test_backprop_scores_are_percentages(node_task):
    model = BackpropNodeClassifier(node_task, GraphConfig(hidden=16, heads=2), num_layers=2, seed=0)
    for _ in range(20):
        model.train_step()
    model.module.eval()
    scores = model.scores()
    assert set(scores) == {"valid", "test"}
    assert 60.0 < scores["test"] <= 100.0
    assert set(model.scores(with_test=False)) == {"valid"}
