"""Fixtures of the graph tests: a small learnable graph as node and link tasks.

Importing this module needs no PyTorch Geometric; the test modules that use it skip without it.
"""

import pytest
import torch

from graph_helpers import NUM_CLASSES, make_planetoid_arrays

from forwardforward.data.planetoid import random_node_split
from forwardforward.variants.forward_gnn import GraphConfig, LinkSet, LinkTask, NodeTask


def _tensors():
    features, labels, edges = make_planetoid_arrays(seed=0)
    pairs = torch.tensor(edges).t()
    edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)  # (2, 2 * undirected edges)
    return torch.from_numpy(features), torch.from_numpy(labels).long(), edge_index


@pytest.fixture(scope="session")
def node_task():
    """Node task on the hand-made graph (570 nodes, 12 features, 3 classes) with a 64/16/20 split."""
    x, labels, edge_index = _tensors()
    return NodeTask(x=x, edge_index=edge_index, labels=labels, split=random_node_split(x.shape[0], 0),
                    num_classes=NUM_CLASSES)


@pytest.fixture(scope="session")
def link_task():
    """Link task on the same graph: 10 % of the edges held out for validation and for test each."""
    x, _, edge_index = _tensors()
    undirected = edge_index[:, edge_index[0] < edge_index[1]]
    order = torch.randperm(undirected.shape[1], generator=torch.Generator().manual_seed(0))
    size = undirected.shape[1] // 10
    valid, test, train = undirected[:, order[:size]], undirected[:, order[size:2 * size]], undirected[:, order[2 * size:]]

    def both(e):
        return torch.cat([e, e.flip(0)], dim=1)

    generator = torch.Generator().manual_seed(1)

    def with_negatives(positives):
        negatives = torch.randint(x.shape[0], positives.shape, generator=generator)
        labels = torch.cat([torch.ones(positives.shape[1]), torch.zeros(negatives.shape[1])])
        return torch.cat([positives, negatives], dim=1), labels

    valid_pairs, valid_labels = with_negatives(valid)
    test_pairs, test_labels = with_negatives(test)
    return LinkTask(
        x=x,
        train=LinkSet(both(train), train, torch.ones(train.shape[1])),
        valid=LinkSet(both(train), valid_pairs, valid_labels),
        test=LinkSet(torch.cat([both(train), both(valid)], dim=1), test_pairs, test_labels),
    )


@pytest.fixture
def small_config():
    """Narrow layers and short training, so that a run takes well under a second."""
    return GraphConfig(hidden=16, heads=2, max_epochs=40, patience=10, lr=0.02)
