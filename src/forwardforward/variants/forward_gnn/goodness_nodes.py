"""Forward-Forward node classification with the label carried by the graph (Park et al., ICLR 2024).

Two encodings put a label on a node. FF separates a true label (positive) from a wrong one
(negative) by the goodness of the node's activity:

- `label-appending`: the node's features get its label's one-hot appended (uniform 1 / C for
  nodes without a label);
- `virtual-nodes`: the virtual node of the node's label sends the node a message (an edge from
  the virtual node to the node); the virtual nodes have frozen random features.

In training, the training nodes carry their true label in the positive graph and a wrong label
(redrawn every epoch, in proportion to the class frequencies) in the negative graph; other nodes
carry none. Layers
train greedily, each with Hinton's threshold loss on the goodness of the training nodes. To
predict the nodes of a split, the network runs once per class c with the training nodes carrying
their true label, the split's nodes carrying c and all other nodes none; a node's class is the
argmax of its goodness summed over layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import UsageError
from ...goodness import default_threshold, get_goodness
from ...negatives import hard_wrong_labels
from .augment import append_labels, make_virtual_nodes, training_assignment
from .layers import GraphConfig, build_layer, ff_objective, layer_seed
from .metrics import masked_accuracy
from .tasks import NodeTask

ENCODINGS = ("label-appending", "virtual-nodes")


class GoodnessNodeClassifier:
    """Greedy FF node classification with one of two label encodings; use with `fit_layerwise`.

    Args:
        task: the graph, labels and split.
        config: shared settings (`goodness` and `threshold` set the FF loss).
        encoding: `label-appending` or `virtual-nodes`.
        seed: seeds the virtual-node features, the weights and the wrong labels.

    Raises:
        UsageError: an unknown encoding or goodness.
    """

    def __init__(self, task: NodeTask, config: GraphConfig, encoding: str, seed: int) -> None:
        if encoding not in ENCODINGS:
            raise UsageError(f"unknown label encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
        self.task, self.config, self.encoding, self.seed = task, config, encoding, seed
        self.goodness = get_goodness(config.goodness)
        self.threshold = (default_threshold(config.goodness, config.hidden)
                          if config.threshold is None else float(config.threshold))
        self.objective = ff_objective(config, self.threshold)
        self.virtual = make_virtual_nodes(task.num_classes, task.x.shape[1], task.num_nodes, seed)
        self.layers = nn.ModuleList()
        self.train_assignment = training_assignment(task.labels, task.split.train)
        self.positive_inputs: torch.Tensor | None = None  # positive graph's input of the layer in training
        # Per split and class c: input of the layer in training when that split's nodes carry c.
        self.class_inputs: dict[str, list[torch.Tensor]] = {"valid": [], "test": []}
        zeros = torch.zeros(task.num_nodes, task.num_classes)
        self.goodness_sum = {"valid": zeros, "test": zeros.clone()}  # of finished layers, per split
        self.generator = torch.Generator()
        counts = torch.bincount(task.labels[task.split.train], minlength=task.num_classes).float()
        self.log_prior = torch.log(counts.clamp(min=1.0) / counts.sum()).unsqueeze(0)  # (1, num_classes)

    def graph(self, assignment: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and edges `(x, edge_index)` of the graph in which node i carries `assignment[i]`."""
        task = self.task
        if self.encoding == "label-appending":
            # Unit-length features, so that the appended label weighs as much as all the words.
            return append_labels(F.normalize(task.x, dim=1), assignment, task.num_classes), task.edge_index
        # Messages flow only from the virtual node to the node. With links in both directions
        # a virtual node's degree is its class size, and GCN's 1 / sqrt(deg_u deg_v) weighting
        # shrinks its message to almost nothing.
        return self.virtual.augment(task.x, task.edge_index, assignment, "from_virtual")

    def _class_assignment(self, c: int, split: str) -> torch.Tensor:
        """Training nodes carry their label, the nodes of `split` carry c, all others none."""
        task = self.task
        assignment = training_assignment(task.labels, task.split.train)
        assignment[getattr(task.split, split)] = c
        return assignment

    @torch.no_grad()
    def _frozen_input(self, assignment: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Input of layer `index` on the graph of `assignment`, through the frozen layers below."""
        h, edge_index = self.graph(assignment)
        for layer in self.layers[:index]:
            h = layer(h, edge_index)
        return h, edge_index

    def start_layer(self, index: int) -> None:
        """Append layer `index` and reset the wrong-label generator to this layer's seed."""
        x, _ = self.graph(self.train_assignment)
        width = x.shape[1] if index == 0 else self.config.hidden
        self.layers.append(build_layer(self.config, index, width, self.seed))
        self.generator.manual_seed(layer_seed(self.seed, index) + 1)
        if self.positive_inputs is None:
            self.positive_inputs = x

    def _negative_assignment(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Pick this epoch's scored training nodes; return them as a mask and the negative assignment."""
        labels, train = self.task.labels, self.task.split.train
        # Only the scored nodes get a wrong label, and the other training nodes keep theirs. So a
        # scored node differs from its positive only in its own label, as at prediction time.
        scored = train & (torch.rand(labels.shape, generator=self.generator) < self.config.scored_fraction)
        # Wrong labels drawn in proportion to the class frequencies of the training nodes, so every
        # class is about as common among negatives as among positives. Uniform wrong labels make the
        # frequent classes mostly positive, and the layers then learn the class prior instead.
        scores = self.log_prior.expand(labels.shape[0], -1)
        wrong = hard_wrong_labels(scores, labels, self.generator)
        return scored, torch.where(scored, wrong, self.train_assignment)

    def _node_goodness(self, activity: torch.Tensor) -> torch.Tensor:
        return self.goodness(activity[: self.task.num_nodes])  # virtual nodes are not scored

    def train_step(self, index: int) -> torch.Tensor:
        """One Adam step of layer `index` on the FF loss of the training nodes; returns the detached loss."""
        layer = self.layers[index]
        _, positive_edges = self.graph(self.train_assignment)
        train, negative_assignment = self._negative_assignment()
        negative_inputs, negative_edges = self._frozen_input(negative_assignment, index)
        # Both inputs come from frozen layers or the data, so no gradient leaves this layer.
        g_pos = self._node_goodness(layer(self.positive_inputs.detach(), positive_edges))[train]
        g_neg = self._node_goodness(layer(negative_inputs.detach(), negative_edges))[train]
        loss = self.objective(g_pos, g_neg)
        layer.step(loss)
        return loss.detach()

    @torch.no_grad()
    def _class_goodness(self, index: int, split: str, inputs: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Goodness `(num_nodes, num_classes)` of layer `index` with the nodes of `split` carrying each class."""
        layer, columns = self.layers[index], []
        for c in range(self.task.num_classes):
            h, edge_index = self.graph(self._class_assignment(c, split))
            if index > 0:
                h = self.class_inputs[split][c] if inputs is None else inputs[c]
            columns.append(self._node_goodness(layer(h, edge_index)))
        return torch.stack(columns, dim=1)

    @torch.no_grad()
    def scores(self, index: int, with_test: bool = True) -> dict[str, float]:
        """Accuracies of the argmax of goodness summed over layers 1 to `index + 1`."""
        result = {}
        for split in ("valid", "test") if with_test else ("valid",):
            goodness = self.goodness_sum[split] + self._class_goodness(index, split)
            result[split] = masked_accuracy(goodness.argmax(dim=1), self.task.labels, getattr(self.task.split, split))
        return result

    @torch.no_grad()
    def finish_layer(self, index: int) -> None:
        """Freeze layer `index`, add its goodness to the sums and cache the next layer's inputs."""
        layer = self.layers[index]
        layer.zero_grad(set_to_none=True)
        layer.requires_grad_(False)
        layer.optimizer = None
        _, positive_edges = self.graph(self.train_assignment)
        self.positive_inputs = layer(self.positive_inputs, positive_edges)
        for split in ("valid", "test"):
            self.goodness_sum[split] = self.goodness_sum[split] + self._class_goodness(index, split)
            new_inputs = []
            for c in range(self.task.num_classes):
                h, edge_index = self.graph(self._class_assignment(c, split))
                if index > 0:
                    h = self.class_inputs[split][c]
                new_inputs.append(layer(h, edge_index))
            self.class_inputs[split] = new_inputs

    def cached_bytes(self) -> int:
        """Bytes of the cached inputs of the positive graph and of every class's graph."""
        cached = [t for inputs in self.class_inputs.values() for t in inputs] + list(self.goodness_sum.values())
        if self.layers and len(self.layers) > 1:
            cached.append(self.positive_inputs)  # the data itself is not counted
        return sum(t.numel() * t.element_size() for t in cached if t is not None)
