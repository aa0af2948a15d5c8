"""The inputs of a node-classification or link-prediction run, as plain tensors."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...data.planetoid import NodeSplit


@dataclass(frozen=True)
class NodeTask:
    """A graph with node labels and a node split.

    Attributes:
        x: `(num_nodes, num_features)` node features.
        edge_index: `(2, num_edges)` directed edges (both directions for an undirected graph).
        labels: `(num_nodes,)` int64 classes in `[0, num_classes)`.
        split: training, validation and test masks.
        num_classes: number of classes.
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    labels: torch.Tensor
    split: NodeSplit
    num_classes: int

    @property
    def num_nodes(self) -> int:
        """Number of real nodes."""
        return self.x.shape[0]


@dataclass(frozen=True)
class LinkSet:
    """Links to score on one graph.

    Attributes:
        edge_index: `(2, num_edges)` message-passing edges.
        edge_label_index: `(2, num_links)` node pairs to score.
        edge_label: `(num_links,)` 1 for edges and 0 for non-edges.
    """

    edge_index: torch.Tensor
    edge_label_index: torch.Tensor
    edge_label: torch.Tensor


@dataclass(frozen=True)
class LinkTask:
    """A graph whose edges are split for link prediction.

    Attributes:
        x: `(num_nodes, num_features)` node features.
        train: training graph; its `edge_label_index` lists the positive training links only
            (negatives are sampled every epoch).
        valid: validation links, scored on the training graph.
        test: test links, scored on the training plus validation graph.
    """

    x: torch.Tensor
    train: LinkSet
    valid: LinkSet
    test: LinkSet

    @property
    def num_nodes(self) -> int:
        """Number of nodes."""
        return self.x.shape[0]


def sample_negative_edges(
    edge_index: torch.Tensor, num_nodes: int, num_samples: int, generator: torch.Generator
) -> torch.Tensor:
    """Draw `num_samples` node pairs uniformly among non-edges and non-loops.

    Returns:
        `(2, num_samples)` int64 pairs, none in `edge_index` and none with equal ends.

    Raises:
        ValueError: the graph is too dense to find non-edges by rejection within 100 rounds.
    """
    existing = edge_index[0] * num_nodes + edge_index[1]
    pairs = torch.empty(2, num_samples, dtype=torch.long)
    todo = torch.arange(num_samples)
    for _ in range(100):
        pairs[:, todo] = torch.randint(num_nodes, (2, todo.numel()), generator=generator)
        candidate = pairs[:, todo]
        bad = torch.isin(candidate[0] * num_nodes + candidate[1], existing) | (candidate[0] == candidate[1])
        todo = todo[bad]
        if todo.numel() == 0:
            return pairs
    raise ValueError(f"could not sample {num_samples} non-edges of a graph with {num_nodes} nodes "
                     f"and {edge_index.shape[1]} edges; the graph is too dense for rejection sampling")
