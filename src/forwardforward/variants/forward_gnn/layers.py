"""GNN layers for forward learning: a PyG convolution on normalised input, with its own optimizer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ...data.planetoid import require_torch_geometric
from ...errors import UsageError
from ...objectives import get_objective

CONVOLUTIONS = ("gcn", "sage", "gat")


@dataclass(frozen=True)
class GraphConfig:
    """Settings shared by every forward-learning method and by the backprop baselines.

    Attributes:
        hidden: width of every GNN layer.
        conv: `gcn`, `sage` (mean aggregation) or `gat`.
        heads: attention heads of `gat`; each head has `hidden / heads` channels, concatenated.
        lr: Adam learning rate of every layer.
        weight_decay: Adam's L2 weight decay.
        max_epochs: full-graph training steps per layer (per model for joint training).
        patience: validation checks without improvement before a layer stops.
        eval_every: training steps between validation checks.
        temperature: divides the node-to-virtual-node dot products.
        virtual_edges: `both` (training node to its virtual node and back) or `to_virtual`
            (the virtual node only receives messages).
        goodness: goodness of the FF forms (`sum_of_squares` or `mean_of_squares`).
        objective: loss of the FF node classifiers: `symba` (each scored node's positive
            against its own negative) or `threshold` (Hinton's).
        symba_alpha: scale of the SymBa loss.
        threshold: theta of the threshold loss; None uses the goodness's default (the width for
            the sum).
        inference_steps: iterations of the top-to-input variant at prediction time.
        scored_fraction: share of the training nodes that the FF node classifiers score (and give
            a wrong label in the negative graph) each epoch.
        dropout: dropout between layers of the backprop baselines (forward methods use none).
    """

    hidden: int = 128
    conv: str = "gcn"
    heads: int = 4
    lr: float = 0.01
    weight_decay: float = 5e-4
    max_epochs: int = 300
    patience: int = 30
    eval_every: int = 1
    temperature: float = 1.0
    virtual_edges: str = "both"
    goodness: str = "sum_of_squares"
    objective: str = "symba"
    symba_alpha: float = 4.0
    threshold: float | None = None
    inference_steps: int = 3
    scored_fraction: float = 0.25
    dropout: float = 0.5

    def __post_init__(self) -> None:
        if self.conv not in CONVOLUTIONS:
            raise UsageError(f"unknown convolution {self.conv!r}; choose one of {', '.join(CONVOLUTIONS)}")
        if self.hidden < 1:
            raise UsageError(f"hidden must be at least 1, got {self.hidden}")
        if self.conv == "gat" and self.hidden % self.heads != 0:
            raise UsageError(f"gat needs hidden divisible by heads, got hidden={self.hidden}, heads={self.heads}")
        if self.virtual_edges not in ("both", "to_virtual"):
            raise UsageError(f"unknown virtual_edges {self.virtual_edges!r}; choose 'both' or 'to_virtual'")
        for name in ("max_epochs", "patience", "eval_every", "inference_steps"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.temperature <= 0:
            raise UsageError(f"lr and temperature must be positive, got lr={self.lr}, temperature={self.temperature}")
        if not 0.0 < self.scored_fraction <= 1.0:
            raise UsageError(f"scored_fraction must be in (0, 1], got {self.scored_fraction}")
        if not 0.0 <= self.dropout < 1.0:
            raise UsageError(f"dropout must be in [0, 1), got {self.dropout}")


def ff_objective(config: GraphConfig, threshold: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Return the configured FF loss as a function of `(goodness_pos, goodness_neg)`, each `(batch,)`.

    Raises:
        UsageError: an unknown objective.
    """
    objective = get_objective(config.objective)
    if config.objective == "symba":
        return lambda g_pos, g_neg: objective(g_pos, g_neg, alpha=config.symba_alpha)
    return lambda g_pos, g_neg: objective(g_pos, g_neg, threshold)


def make_convolution(kind: str, in_features: int, units: int, heads: int = 4) -> nn.Module:
    """Create a PyG convolution mapping `(num_nodes, in_features)` to `(num_nodes, units)`.

    Raises:
        UsageError: an unknown `kind`, or `gat` with `units` not divisible by `heads`.
    """
    require_torch_geometric()
    from torch_geometric.nn import GATConv, GCNConv, SAGEConv

    if kind == "gcn":
        return GCNConv(in_features, units)
    if kind == "sage":
        return SAGEConv(in_features, units, aggr="mean")
    if kind == "gat":
        if units % heads != 0:
            raise UsageError(f"gat needs units divisible by heads, got units={units}, heads={heads}")
        return GATConv(in_features, units // heads, heads=heads)
    raise UsageError(f"unknown convolution {kind!r}; choose one of {', '.join(CONVOLUTIONS)}")


class GraphLayer(nn.Module):
    """One GNN layer: `ReLU(conv(normalize(x), edge_index))` with unit-length input rows.

    Each input row is divided by its L2 norm, so a layer sees only the direction of the activity
    below, not its length (the FF length normalisation, here with the L2 norm rather than the RMS
    because the raw bag-of-words rows are sparse and short).

    Args:
        kind: `gcn`, `sage` or `gat`.
        in_features: input width.
        units: output width.
        heads: attention heads for `gat`.
    """

    def __init__(self, kind: str, in_features: int, units: int, heads: int = 4) -> None:
        super().__init__()
        self.conv = make_convolution(kind, in_features, units, heads)
        self.in_features = in_features
        self.units = units
        self.optimizer: torch.optim.Optimizer | None = None

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Map `(num_nodes, in_features)` and `(2, num_edges)` to `(num_nodes, units)` activities."""
        return torch.relu(self.conv(F.normalize(x, dim=1), edge_index))

    def configure_optimizer(self, config: GraphConfig) -> torch.optim.Optimizer:
        """Create this layer's own Adam optimizer over its own parameters only."""
        self.optimizer = torch.optim.Adam(self.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        return self.optimizer

    def step(self, loss: torch.Tensor) -> None:
        """Take one optimizer step on `loss`, a scalar that depends only on this layer's parameters.

        Raises:
            RuntimeError: `configure_optimizer` was not called first.
        """
        if self.optimizer is None:
            raise RuntimeError("call configure_optimizer() before step()")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def build_layer(config: GraphConfig, index: int, in_features: int, seed: int) -> GraphLayer:
    """Create layer `index` (0-based) with weights drawn from a seed of its own.

    Seeding each layer separately makes the first k layers of a deeper greedy run identical to a
    k-layer run with the same seed, so one 4-layer run also measures depths 1 to 3.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(layer_seed(seed, index))
        layer = GraphLayer(config.conv, in_features, config.hidden, config.heads)
    layer.configure_optimizer(config)
    return layer


def layer_seed(seed: int, index: int) -> int:
    """Return the seed of layer `index` in a run with seed `seed`."""
    return 1_000_003 * seed + 7919 * (index + 1)
