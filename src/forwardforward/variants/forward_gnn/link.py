"""Forward learning for link prediction: a score per layer, trained against sampled non-edges.

Every layer embeds the nodes and scores a pair (u, v) from `h_u * h_v` (elementwise product):

- `dot-product`: logit `sum_j h_uj h_vj`, binary cross-entropy of edges against as many
  non-edges drawn afresh each epoch. This is `threshold_loss` with threshold 0, since
  softplus(-s) is the cross-entropy of label 1 and softplus(s) that of label 0.
- `ff`: the FF form; goodness `sum_j (h_uj h_vj)^2`, trained with the configured FF objective
  (SymBa by default, each edge against the non-edge drawn beside it; or Hinton's threshold
  loss), with p(edge) = sigmoid(goodness - threshold).

`LinkForward` trains the layers greedily. `LinkTopToLoss` trains them together, and layer k
scores the mean of its output and the previous step's outputs of the layers above. A pair's probability
is the mean of the per-layer probabilities; the score is ROC-AUC in percent.
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import UsageError
from ...goodness import default_threshold, get_goodness
from ...objectives import threshold_loss
from .layers import GraphConfig, build_layer, ff_objective, layer_seed
from .metrics import roc_auc
from .tasks import LinkSet, LinkTask, sample_negative_edges

LINK_SCORES = ("dot-product", "ff")


class _LinkScoring:
    """Scores, losses and negative sampling shared by the link-prediction methods."""

    def __init__(self, task: LinkTask, config: GraphConfig, score: str, seed: int) -> None:
        if score not in LINK_SCORES:
            raise UsageError(f"unknown link score {score!r}; choose one of {', '.join(LINK_SCORES)}")
        self.task, self.config, self.score, self.seed = task, config, score, seed
        self.goodness = get_goodness(config.goodness)
        self.threshold = 0.0
        self.objective = lambda s_pos, s_neg: threshold_loss(s_pos, s_neg, 0.0)
        if score == "ff":
            self.threshold = (default_threshold(config.goodness, config.hidden)
                              if config.threshold is None else float(config.threshold))
            self.objective = ff_objective(config, self.threshold)
        self.generator = torch.Generator().manual_seed(layer_seed(seed, 0) + 2)

    def pair_scores(self, activity: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Logits `(num_pairs,)` of the pairs `(2, num_pairs)` from `(num_nodes, units)` activity."""
        product = activity[pairs[0]] * activity[pairs[1]]  # (num_pairs, units)
        if self.score == "dot-product":
            return product.sum(dim=1)
        return self.goodness(product)

    def loss(self, activity: torch.Tensor) -> torch.Tensor:
        """Loss of the training edges against an equal number of fresh non-edges, pair by pair."""
        train = self.task.train
        positives = train.edge_label_index
        negatives = sample_negative_edges(train.edge_index, self.task.num_nodes, positives.shape[1], self.generator)
        return self.objective(self.pair_scores(activity, positives), self.pair_scores(activity, negatives))

    def probabilities(self, activity: torch.Tensor, links: LinkSet) -> torch.Tensor:
        """p(edge) `(num_links,)` of the links to score, in float64.

        Double precision keeps sigmoid(goodness - threshold) from rounding to exactly 0 far
        below the threshold, which would turn distinct scores into ties.
        """
        return torch.sigmoid(self.pair_scores(activity, links.edge_label_index).double() - self.threshold)


class LinkForward(_LinkScoring):
    """Greedy link prediction, one layer after another; use with `fit_layerwise`.

    Args:
        task: the graph and its link split.
        config: shared settings.
        score: `dot-product` or `ff`.
        seed: seeds the weights and the sampled non-edges.
    """

    def __init__(self, task: LinkTask, config: GraphConfig, score: str, seed: int) -> None:
        super().__init__(task, config, score, seed)
        self.layers = nn.ModuleList()
        # Inputs of the layer in training on the training graph and on the test graph, whose
        # message-passing edges also contain the validation edges.
        self.train_inputs = task.x
        self.test_inputs = task.x
        self.inputs_are_data = True
        self.probability_sums = {"valid": 0.0, "test": 0.0}

    def start_layer(self, index: int) -> None:
        """Append layer `index`, which reads the frozen output of the layers below."""
        self.layers.append(build_layer(self.config, index, self.train_inputs.shape[1], self.seed))

    def train_step(self, index: int) -> torch.Tensor:
        """One Adam step of layer `index`; returns the detached loss."""
        layer = self.layers[index]
        loss = self.loss(layer(self.train_inputs.detach(), self.task.train.edge_index))  # detached: layer-local
        layer.step(loss)
        return loss.detach()

    @torch.no_grad()
    def _layer_probabilities(self, index: int, with_test: bool = True) -> dict[str, torch.Tensor]:
        layer = self.layers[index]
        result = {"valid": self.probabilities(layer(self.train_inputs, self.task.valid.edge_index), self.task.valid)}
        if with_test:
            result["test"] = self.probabilities(layer(self.test_inputs, self.task.test.edge_index), self.task.test)
        return result

    @torch.no_grad()
    def scores(self, index: int, with_test: bool = True) -> dict[str, float]:
        """ROC-AUC in percent of the mean probability of layers 1 to `index + 1`."""
        current = self._layer_probabilities(index, with_test)
        return {name: 100.0 * roc_auc((self.probability_sums[name] + current[name]) / (index + 1),
                                      getattr(self.task, name).edge_label)
                for name in current}

    @torch.no_grad()
    def finish_layer(self, index: int) -> None:
        """Freeze layer `index`, add its probabilities and feed its outputs upward."""
        layer = self.layers[index]
        layer.zero_grad(set_to_none=True)
        layer.requires_grad_(False)
        layer.optimizer = None
        current = self._layer_probabilities(index)
        for name in self.probability_sums:
            self.probability_sums[name] = self.probability_sums[name] + current[name]
        self.train_inputs = layer(self.train_inputs, self.task.train.edge_index)
        self.test_inputs = layer(self.test_inputs, self.task.test.edge_index)
        self.inputs_are_data = False

    def cached_bytes(self) -> int:
        """Bytes of the cached inputs of the layer in training (none while they are the data itself)."""
        if self.inputs_are_data:
            return 0
        return sum(t.numel() * t.element_size() for t in (self.train_inputs, self.test_inputs))


class LinkTopToLoss(_LinkScoring):
    """Link prediction with the layers above feeding each layer's loss; use with `fit_joint`.

    Args:
        task: the graph and its link split.
        config: shared settings.
        num_layers: number of GNN layers.
        seed: seeds the weights and the sampled non-edges.
        score: `dot-product` (default) or `ff`.
    """

    def __init__(self, task: LinkTask, config: GraphConfig, num_layers: int, seed: int,
                 score: str = "dot-product") -> None:
        super().__init__(task, config, score, seed)
        widths = [task.x.shape[1]] + [config.hidden] * num_layers
        self.module = nn.ModuleList(build_layer(config, i, widths[i], seed) for i in range(num_layers))
        with torch.no_grad():
            self.states = self._bottom_up(task.train.edge_index)

    def _bottom_up(self, edge_index: torch.Tensor) -> list[torch.Tensor]:
        states, h = [], self.task.x
        for layer in self.module:
            h = layer(h, edge_index)
            states.append(h)
        return states

    def train_step(self) -> torch.Tensor:
        """One Adam step of every layer, bottom first; returns the detached summed loss."""
        total = torch.zeros(())
        h, new_states = self.task.x, []
        for k, layer in enumerate(self.module):
            out = layer(h.detach(), self.task.train.edge_index)  # detached input: no gradient to layer k-1
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
        """ROC-AUC in percent of the mean over layers of each layer's probability."""
        result = {}
        for name in ("valid", "test") if with_test else ("valid",):
            links = getattr(self.task, name)
            states = self._bottom_up(links.edge_index)
            mean = sum(self.probabilities(torch.stack(states[k:]).mean(dim=0), links)
                       for k in range(len(states))) / len(states)
            result[name] = 100.0 * roc_auc(mean, links.edge_label)
        return result

    def cached_bytes(self) -> int:
        """Bytes of the stored states of all layers."""
        return sum(s.numel() * s.element_size() for s in self.states)
