"""Backprop baselines for the forward-learning GNN methods: the same layers, trained end to end.

The network is the stack of `GraphLayer`s that the forward methods train layer by layer (PyG's
GCN, SAGE or GAT convolution on L2-normalised input, then ReLU), with dropout on each layer's
input. Node classification adds a linear softmax head on the last layer; link prediction scores
a pair by the dot product of its two embeddings. One Adam optimizer updates all parameters, and
early stopping on the validation score restores the best state (see `fit_joint`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..objectives import threshold_loss
from ..variants.forward_gnn.layers import GraphConfig, GraphLayer, layer_seed
from ..variants.forward_gnn.metrics import masked_accuracy, roc_auc
from ..variants.forward_gnn.tasks import LinkTask, NodeTask, sample_negative_edges


class GNNStack(nn.Module):
    """`num_layers` GNN layers of width `config.hidden`, with dropout before each.

    Args:
        in_features: input width.
        config: shared settings (`conv`, `hidden`, `heads`, `dropout`).
        num_layers: at least 1.
        seed: seeds the weights; layer k gets the same weights as layer k of a forward method.
    """

    def __init__(self, in_features: int, config: GraphConfig, num_layers: int, seed: int) -> None:
        super().__init__()
        widths = [in_features] + [config.hidden] * num_layers
        layers = []
        for i in range(num_layers):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(layer_seed(seed, i))
                layers.append(GraphLayer(config.conv, widths[i], config.hidden, config.heads))
        self.layers = nn.ModuleList(layers)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Map `(num_nodes, in_features)` to `(num_nodes, hidden)` embeddings."""
        for layer in self.layers:
            x = layer(F.dropout(x, self.dropout, self.training), edge_index)
        return x


class BackpropNodeClassifier:
    """A GNN stack plus a linear head, trained end to end with cross-entropy; use with `fit_joint`.

    Args:
        task: the graph, labels and split.
        config: shared settings.
        num_layers: number of GNN layers.
        seed: seeds the weights and dropout.
    """

    def __init__(self, task: NodeTask, config: GraphConfig, num_layers: int, seed: int) -> None:
        self.task = task
        stack = GNNStack(task.x.shape[1], config, num_layers, seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(layer_seed(seed, num_layers))
            head = nn.Linear(config.hidden, task.num_classes)
        self.module = nn.ModuleDict({"stack": stack, "head": head})
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        torch.manual_seed(seed)  # dropout masks

    def _logits(self) -> torch.Tensor:
        return self.module["head"](self.module["stack"](self.task.x, self.task.edge_index))

    def train_step(self) -> torch.Tensor:
        """One Adam step of the whole network; returns the detached loss."""
        train = self.task.split.train
        loss = F.cross_entropy(self._logits()[train], self.task.labels[train])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    @torch.no_grad()
    def scores(self, with_test: bool = True) -> dict[str, float]:
        """Validation (and unless `with_test` is False, test) accuracy in percent."""
        predictions = self._logits().argmax(dim=1)
        split, labels = self.task.split, self.task.labels
        result = {"valid": masked_accuracy(predictions, labels, split.valid)}
        if with_test:
            result["test"] = masked_accuracy(predictions, labels, split.test)
        return result

    def cached_bytes(self) -> int:
        """Backprop keeps nothing between steps beyond its parameters."""
        return 0


class BackpropLinkPredictor:
    """A GNN stack with a dot-product decoder, trained end to end; use with `fit_joint`.

    Each step scores the training edges against as many freshly drawn non-edges with binary
    cross-entropy (`threshold_loss` at threshold 0).

    Args:
        task: the graph and its link split.
        config: shared settings.
        num_layers: number of GNN layers.
        seed: seeds the weights, dropout and the sampled non-edges.
    """

    def __init__(self, task: LinkTask, config: GraphConfig, num_layers: int, seed: int) -> None:
        self.task = task
        self.module = GNNStack(task.x.shape[1], config, num_layers, seed)
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.generator = torch.Generator().manual_seed(layer_seed(seed, 0) + 2)
        torch.manual_seed(seed)

    def _pair_logits(self, embedding: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        return (embedding[pairs[0]] * embedding[pairs[1]]).sum(dim=1)

    def train_step(self) -> torch.Tensor:
        """One Adam step of the whole network; returns the detached loss."""
        train = self.task.train
        embedding = self.module(self.task.x, train.edge_index)
        positives = train.edge_label_index
        negatives = sample_negative_edges(train.edge_index, self.task.num_nodes, positives.shape[1], self.generator)
        loss = threshold_loss(self._pair_logits(embedding, positives), self._pair_logits(embedding, negatives), 0.0)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    @torch.no_grad()
    def scores(self, with_test: bool = True) -> dict[str, float]:
        """Validation (and unless `with_test` is False, test) ROC-AUC in percent."""
        result = {}
        for name in ("valid", "test") if with_test else ("valid",):
            links = getattr(self.task, name)
            embedding = self.module(self.task.x, links.edge_index)
            result[name] = 100.0 * roc_auc(self._pair_logits(embedding, links.edge_label_index), links.edge_label)
        return result

    def cached_bytes(self) -> int:
        """Backprop keeps nothing between steps beyond its parameters."""
        return 0
