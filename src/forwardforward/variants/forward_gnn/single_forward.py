"""Single-forward node classification and its two top-down variants (Park et al., ICLR 2024).

The graph gets one virtual node per class with frozen random features, and every training node
is linked to the virtual node of its class. Each layer is trained with cross-entropy over the
dot products between a training node's activity and the virtual nodes' activities of the same
layer. A node is classified by the class probabilities summed over layers.

- `SingleForward`: greedy, one layer after another, each on the frozen output of the one below.
- `TopToLoss`: all layers train at every step; the embedding that layer k's loss scores is the
  mean of its own output and the previous step's outputs of the layers above it.
- `TopToInput`: all layers train at every step; layer k reads the output of the layer below
  (this step) concatenated with the output of the layer above (previous step), and the top layer
  reads the label vectors of the nodes. Prediction iterates this update `inference_steps` times
  from a bottom-up pass and sums the probabilities of every layer at every iteration.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...objectives import virtual_node_cross_entropy
from .augment import append_labels, make_virtual_nodes, training_assignment
from .layers import GraphConfig, build_layer
from .metrics import masked_accuracy
from .tasks import NodeTask


class _VirtualNodeGraph:
    """The augmented graph shared by the single-forward methods, and their scoring helpers."""

    def __init__(self, task: NodeTask, config: GraphConfig, seed: int) -> None:
        self.task = task
        self.config = config
        self.seed = seed
        self.virtual = make_virtual_nodes(task.num_classes, task.x.shape[1], task.num_nodes, seed)
        assignment = training_assignment(task.labels, task.split.train)
        self.x, self.edge_index = self.virtual.augment(task.x, task.edge_index, assignment, config.virtual_edges)

    def loss(self, activity: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the training nodes; `activity` is `(num_nodes + num_classes, units)`."""
        n, train = self.task.num_nodes, self.task.split.train
        return virtual_node_cross_entropy(
            activity[:n][train], activity[n:], self.task.labels[train], self.config.temperature
        )

    def probabilities(self, activity: torch.Tensor) -> torch.Tensor:
        """Class probabilities `(num_nodes, num_classes)` from `(num_nodes + num_classes, units)` activity."""
        n = self.task.num_nodes
        return torch.softmax(activity[:n] @ activity[n:].t() / self.config.temperature, dim=1)

    def accuracies(self, probability_sum: torch.Tensor, with_test: bool = True) -> dict[str, float]:
        """Validation (and unless `with_test` is False, test) accuracy in percent of the argmax."""
        predictions = probability_sum.argmax(dim=1)
        split, labels = self.task.split, self.task.labels
        result = {"valid": masked_accuracy(predictions, labels, split.valid)}
        if with_test:
            result["test"] = masked_accuracy(predictions, labels, split.test)
        return result


class SingleForward(_VirtualNodeGraph):
    """Greedy single-forward learning; use with `fit_layerwise`.

    Args:
        task: the graph, labels and split.
        config: shared settings.
        seed: seeds the virtual-node features and every layer's weights.
    """

    def __init__(self, task: NodeTask, config: GraphConfig, seed: int) -> None:
        super().__init__(task, config, seed)
        self.layers = nn.ModuleList()
        self.inputs = self.x  # (num_nodes + num_classes, features) input of the layer in training
        self.probability_sum = torch.zeros(task.num_nodes, task.num_classes)  # of finished layers

    def start_layer(self, index: int) -> None:
        """Append layer `index`, which reads the frozen output of the layers below."""
        self.layers.append(build_layer(self.config, index, self.inputs.shape[1], self.seed))

    def train_step(self, index: int) -> torch.Tensor:
        """One Adam step of layer `index` on its cross-entropy; returns the detached loss."""
        layer = self.layers[index]
        # The input is detached, so this loss cannot reach any layer below.
        loss = self.loss(layer(self.inputs.detach(), self.edge_index))
        layer.step(loss)
        return loss.detach()

    @torch.no_grad()
    def scores(self, index: int, with_test: bool = True) -> dict[str, float]:
        """Accuracies of the probabilities summed over layers 1 to `index + 1`."""
        activity = self.layers[index](self.inputs, self.edge_index)
        return self.accuracies(self.probability_sum + self.probabilities(activity), with_test)

    @torch.no_grad()
    def finish_layer(self, index: int) -> None:
        """Freeze layer `index`, add its probabilities to the sum and feed its output upward."""
        layer = self.layers[index]
        layer.zero_grad(set_to_none=True)
        layer.requires_grad_(False)
        layer.optimizer = None
        activity = layer(self.inputs, self.edge_index)
        self.probability_sum += self.probabilities(activity)
        self.inputs = activity

    def cached_bytes(self) -> int:
        """Bytes of the cached input (unless it is the data itself) and of the probability sum."""
        cached = [self.probability_sum] if self.inputs is self.x else [self.inputs, self.probability_sum]
        return sum(t.numel() * t.element_size() for t in cached)


class TopToLoss(_VirtualNodeGraph):
    """Single-forward learning where the layers above feed each layer's loss; use with `fit_joint`.

    Args:
        task: the graph, labels and split.
        config: shared settings.
        num_layers: number of GNN layers.
        seed: seeds the virtual-node features and every layer's weights.
    """

    def __init__(self, task: NodeTask, config: GraphConfig, num_layers: int, seed: int) -> None:
        super().__init__(task, config, seed)
        widths = [self.x.shape[1]] + [config.hidden] * num_layers
        self.module = nn.ModuleList(build_layer(config, i, widths[i], seed) for i in range(num_layers))
        with torch.no_grad():
            self.states = self._bottom_up()

    def _bottom_up(self) -> list[torch.Tensor]:
        states, h = [], self.x
        for layer in self.module:
            h = layer(h, self.edge_index)
            states.append(h)
        return states

    def train_step(self) -> torch.Tensor:
        """One Adam step of every layer, bottom first; returns the detached summed loss."""
        total = torch.zeros(())
        h = self.x
        new_states = []
        for k, layer in enumerate(self.module):
            out = layer(h.detach(), self.edge_index)  # detached input: no gradient to layer k-1
            # Layers above enter as constants from the previous step.
            embedding = torch.stack([out] + [s.detach() for s in self.states[k + 1 :]]).mean(dim=0)
            loss = self.loss(embedding)
            layer.step(loss)
            total += loss.detach()
            h = out.detach()
            new_states.append(h)
        self.states = new_states
        return total

    @torch.no_grad()
    def scores(self, with_test: bool = True) -> dict[str, float]:
        """Accuracies of the probabilities summed over layers, each scoring the mean with those above."""
        states = self._bottom_up()
        probability_sum = sum(
            self.probabilities(torch.stack(states[k:]).mean(dim=0)) for k in range(len(states))
        )
        return self.accuracies(probability_sum, with_test)

    def cached_bytes(self) -> int:
        """Bytes of the stored states of all layers."""
        return sum(s.numel() * s.element_size() for s in self.states)


class TopToInput(_VirtualNodeGraph):
    """Single-forward learning where each layer also reads the layer above; use with `fit_joint`.

    The top layer reads label vectors: one-hot for training nodes and virtual nodes, uniform
    for all other nodes.

    Args:
        task: the graph, labels and split.
        config: shared settings.
        num_layers: number of GNN layers.
        seed: seeds the virtual-node features and every layer's weights.
    """

    def __init__(self, task: NodeTask, config: GraphConfig, num_layers: int, seed: int) -> None:
        super().__init__(task, config, seed)
        c = task.num_classes
        assignment = training_assignment(task.labels, task.split.train)
        real_labels = append_labels(task.x[:, :0], assignment, c)  # (num_nodes, num_classes)
        self.top = torch.cat([real_labels, torch.eye(c)])  # (num_nodes + num_classes, num_classes)
        below = [self.x.shape[1]] + [config.hidden] * (num_layers - 1)
        above = [config.hidden] * (num_layers - 1) + [c]
        self.module = nn.ModuleList(
            build_layer(config, i, below[i] + above[i], seed) for i in range(num_layers)
        )
        with torch.no_grad():
            self.states = self._bottom_up()

    def _input(self, below: torch.Tensor, above: torch.Tensor) -> torch.Tensor:
        # Each part is scaled to unit length on its own, so neither drowns the other.
        return torch.cat([F.normalize(below, dim=1), F.normalize(above, dim=1)], dim=1)

    def _above(self, k: int, states: list[torch.Tensor]) -> torch.Tensor:
        return states[k + 1] if k + 1 < len(states) else self.top

    def _bottom_up(self) -> list[torch.Tensor]:
        """First states: one upward pass with zeros in place of the layers above."""
        states, h = [], self.x
        for k, layer in enumerate(self.module):
            width = layer.in_features - h.shape[1]
            h = layer(self._input(h, torch.zeros(h.shape[0], width)), self.edge_index)
            states.append(h)
        return states

    def _iterate(self, states: list[torch.Tensor], train: bool) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Update every layer once, bottom first.

        Each layer reads the layer below from this step and the layer above from the last step.
        """
        total = torch.zeros(())
        new_states, below = [], self.x
        for k, layer in enumerate(self.module):
            inputs = self._input(below, self._above(k, states)).detach()
            out = layer(inputs, self.edge_index)
            if train:
                loss = self.loss(out)
                layer.step(loss)
                total += loss.detach()
                out = out.detach()
            new_states.append(out)
            below = out
        return new_states, total

    def train_step(self) -> torch.Tensor:
        """One Adam step of every layer; returns the detached summed loss."""
        self.states, total = self._iterate(self.states, train=True)
        return total

    @torch.no_grad()
    def scores(self, with_test: bool = True) -> dict[str, float]:
        """Accuracies of probabilities summed over every layer and every inference iteration."""
        states = self._bottom_up()
        probability_sum = torch.zeros(self.task.num_nodes, self.task.num_classes)
        for _ in range(self.config.inference_steps):
            states, _ = self._iterate(states, train=False)
            for activity in states:
                probability_sum += self.probabilities(activity)
        return self.accuracies(probability_sum, with_test)

    def cached_bytes(self) -> int:
        """Bytes of the stored states of all layers and the label vectors."""
        return sum(s.numel() * s.element_size() for s in self.states + [self.top])
