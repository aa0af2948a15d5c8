"""The linear probe of Self-Contrastive FF: a linear softmax trained on frozen features.

Features are the activities of chosen layers, each max-pooled (conv layers, optionally),
standardised per sample and flattened, then concatenated. They are computed once without a
graph, so training the probe can never change the network. The probe applies dropout to the
features and is trained with cross-entropy and Adam.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..normalization import standardize

# The probe's learning rate halves after each of these fractions of its epochs.
_HALVING_POINTS = (0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9)


def probe_lr_gain(epoch: int, epochs: int) -> float:
    """Gain of the probe's learning rate in 0-based `epoch`: 0.5 per halving point passed."""
    passed = sum(1 for point in _HALVING_POINTS if epoch >= int(epochs * point) > 0)
    return 0.5**passed


def layer_features(activity: torch.Tensor, pool_size: int = 0) -> torch.Tensor:
    """Turn one layer's activity into probe features: optional max-pool, standardise, flatten.

    Args:
        activity: `(batch, units)` or `(batch, channels, H, W)`.
        pool_size: conv only: max-pooling window and stride; 0 or 1 pools nothing.

    Returns:
        `(batch, features)`.
    """
    if activity.dim() == 4 and pool_size > 1:
        activity = F.max_pool2d(activity, pool_size)
    return standardize(activity).flatten(1)


@torch.no_grad()
def extract_features(
    activities_fn: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    inputs: torch.Tensor,
    layers: Sequence[int],
    pool_sizes: Sequence[int] = (),
    batch_size: int = 1000,
) -> torch.Tensor:
    """Compute the concatenated probe features of all `inputs`, in batches, without a graph.

    Args:
        activities_fn: maps a batch of inputs to the activity of every layer, bottom first.
        inputs: `(n, ...)` inputs of the network (already paired where needed).
        layers: 0-based indices of the layers to use.
        pool_sizes: one pooling window per entry of `layers`, or empty for none.
        batch_size: samples per batch.

    Returns:
        `(n, features)` float32 features on the device of `inputs`.
    """
    pools = list(pool_sizes) or [0] * len(layers)
    chunks = []
    for start in range(0, inputs.shape[0], batch_size):
        activities = activities_fn(inputs[start : start + batch_size])
        parts = [layer_features(activities[layer], pool) for layer, pool in zip(layers, pools)]
        chunks.append(torch.cat(parts, dim=1))  # (batch, sum of layer features)
    return torch.cat(chunks)


class LinearProbe(nn.Module):
    """Dropout followed by a linear map from features to class logits.

    Args:
        in_features: feature size.
        num_classes: number of classes.
        dropout: dropout probability on the features in training mode.
    """

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Map `(batch, in_features)` to `(batch, num_classes)` logits."""
        return self.linear(self.dropout(features))


def train_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    epochs: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    dropout: float = 0.1,
    seed: int = 0,
) -> LinearProbe:
    """Train a `LinearProbe` with cross-entropy on detached `(n, features)` and `(n,)` labels.

    The probe's initialisation, dropout and shuffling come from `seed` and nothing else, so the
    same features always give the same probe; the global random state is restored afterwards.
    """
    features = features.detach()
    with torch.random.fork_rng(devices=[features.device] if features.device.type == "cuda" else []):
        torch.manual_seed(seed)
        probe = LinearProbe(features.shape[1], num_classes, dropout).to(features.device)
        optimizer = torch.optim.Adam(probe.parameters(), lr=lr)
        shuffle = torch.Generator().manual_seed(seed)
        n = features.shape[0]
        probe.train()
        for epoch in range(epochs):
            for group in optimizer.param_groups:
                group["lr"] = lr * probe_lr_gain(epoch, epochs)
            order = torch.randperm(n, generator=shuffle).to(features.device)
            for b in range(math.ceil(n / batch_size)):
                index = order[b * batch_size : (b + 1) * batch_size]
                loss = F.cross_entropy(probe(features[index]), labels[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    probe.eval()
    return probe


@torch.no_grad()
def probe_error(probe: LinearProbe, features: torch.Tensor, labels: torch.Tensor) -> float:
    """Error rate in percent of `probe` on `(n, features)` and `(n,)` labels."""
    probe.eval()
    wrong = (probe(features).argmax(dim=1) != labels).sum().item()
    return 100.0 * wrong / max(1, labels.shape[0])
