"""Centroid goodness and the goodness-based N-pair margin loss of Distance-Forward.

Distance-Forward (Wu et al. 2024, arXiv 2408.14925) reads Forward-Forward as metric learning.
Every layer keeps one centroid per class. The goodness of a sample for a class is the negative
distance between the sample's representation and that class's centroid, and a margin loss
makes the sample's own class the best by a margin. The formulas below are ours (the paper's
equations were not available); docs/algorithms.md states them and where they may differ.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import check_choice
from ..errors import UsageError

DISTANCES = ("squared_euclidean", "cosine")
CENTROID_MODES = ("learned", "running_mean")
NEGATIVE_MODES = ("all", "random", "hardest")
LOSS_FORMS = ("softplus", "hinge")


def centroid_goodness(representations: torch.Tensor, centroids: torch.Tensor, distance: str) -> torch.Tensor:
    """Compute the goodness of every sample for every class: the negative distance to its centroid.

    `squared_euclidean`: `g[i, k] = -mean_d (z[i, d] - c[k, d]) ** 2`, the squared Euclidean
    distance divided by the dimension `D`, so that one margin suits layers of any width.
    `cosine`: `g[i, k] = cos(z[i], c[k]) - 1`, the negative cosine distance, in [-2, 0].

    Args:
        representations: `(batch, D)` layer representations `z`.
        centroids: `(num_classes, D)` class centroids `c`.
        distance: `squared_euclidean` or `cosine`.

    Returns:
        `(batch, num_classes)` goodness, at most 0; 0 means the sample sits on the centroid.

    Raises:
        UsageError: an unknown distance, or feature sizes that differ.
    """
    check_choice("distance", distance, DISTANCES)
    if representations.dim() != 2 or centroids.dim() != 2 or representations.shape[1] != centroids.shape[1]:
        raise UsageError(
            f"representations {tuple(representations.shape)} and centroids {tuple(centroids.shape)} "
            "must be (batch, D) and (num_classes, D) with the same D"
        )
    if distance == "cosine":
        z = F.normalize(representations, dim=1, eps=1e-8)
        c = F.normalize(centroids, dim=1, eps=1e-8)
        return z @ c.T - 1.0
    difference = representations.unsqueeze(1) - centroids.unsqueeze(0)  # (batch, num_classes, D)
    return -difference.pow(2).mean(dim=2)


def negative_mask(
    goodness: torch.Tensor,
    labels: torch.Tensor,
    mode: str,
    num_negatives: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Choose the negative classes of every sample: all wrong classes, N random ones, or the N hardest.

    The hardest negatives are the wrong classes of highest goodness (closest centroids). The
    choice itself carries no gradient.

    Args:
        goodness: `(batch, num_classes)`.
        labels: `(batch,)` true classes; a sample's own class is never a negative.
        mode: `all`, `random` or `hardest`.
        num_negatives: N for `random` and `hardest`; ignored for `all`.
        generator: random source of `random` (on the goodness's device).

    Returns:
        `(batch, num_classes)` boolean mask, True at the chosen negatives.

    Raises:
        UsageError: an unknown mode, or N outside 1..num_classes - 1.
    """
    num_classes = goodness.shape[1]
    check_choice("negatives", mode, NEGATIVE_MODES)
    wrong = torch.ones_like(goodness, dtype=torch.bool)
    wrong[torch.arange(goodness.shape[0], device=goodness.device), labels] = False
    if mode == "all":
        return wrong
    if not 1 <= num_negatives <= num_classes - 1:
        raise UsageError(f"num_negatives must be in 1..{num_classes - 1} for {num_classes} classes, got {num_negatives}")
    if mode == "random":
        scores = torch.rand(goodness.shape, generator=generator, device=goodness.device)
    else:
        scores = goodness.detach().clone()
    scores = scores.masked_fill(~wrong, float("-inf"))
    chosen = scores.topk(num_negatives, dim=1).indices
    return torch.zeros_like(wrong).scatter_(1, chosen, True)


def n_pair_margin_loss(
    goodness: torch.Tensor,
    labels: torch.Tensor,
    negatives: torch.Tensor,
    margin: float,
    form: str = "softplus",
    scale: float = 1.0,
) -> torch.Tensor:
    """Compute the goodness-based N-pair margin loss, averaged over the batch.

    With `g+` the goodness of the true class and `g_j` that of negative j (of N chosen),
    `softplus`: `(1 / s) * log(1 + sum_j exp(s * (m + g_j - g+)))`, the N-pair loss with a
    margin (for N = 1 it is `softplus(s * (m + g_1 - g+)) / s`, and it tends to the hinge on
    the hardest negative as s grows);
    `hinge`: `mean_j max(0, m + g_j - g+)`, zero once every negative trails by the margin.

    Args:
        goodness: `(batch, num_classes)`.
        labels: `(batch,)` true classes.
        negatives: `(batch, num_classes)` boolean mask of the negatives, the same count N per row.
        margin: m, the lead the true class must have.
        form: `softplus` or `hinge`.
        scale: s, the sharpness of `softplus` (positive); ignored by `hinge`.

    Returns:
        The scalar loss.

    Raises:
        UsageError: an unknown form, a scale that is not positive, or a row without negatives.
    """
    check_choice("loss", form, LOSS_FORMS)
    if scale <= 0:
        raise UsageError(f"the softplus scale must be positive, got {scale}")
    counts = negatives.sum(dim=1)
    if bool((counts == 0).any()):
        raise UsageError("every sample needs at least one negative class; check the negatives mask")
    positive = goodness.gather(1, labels.view(-1, 1))  # (batch, 1)
    violation = margin + goodness - positive  # (batch, num_classes)
    if form == "hinge":
        return (torch.relu(violation) * negatives).sum(dim=1).div(counts).mean()
    scaled = (scale * violation).masked_fill(~negatives, float("-inf"))
    zero = torch.zeros_like(positive)
    return torch.logsumexp(torch.cat([zero, scaled], dim=1), dim=1).div(scale).mean()


class ClassCentroids(nn.Module):
    """One centroid per class in a layer's representation space, and the goodness it defines.

    `learned` centroids are a parameter trained by the layer's loss. `running_mean` centroids
    are a registered buffer (so they survive `state_dict()` and `.to(device)`) that `update`
    moves towards each class's batch mean: `c <- momentum * c + (1 - momentum) * mean`, with
    a class's first batch mean taken as it is.

    Args:
        num_classes: number of centroids.
        dim: size D of the representation.
        distance: `squared_euclidean` or `cosine`.
        mode: `learned` or `running_mean`.
        momentum: running-mean momentum, in [0, 1).

    Raises:
        UsageError: an unknown distance or mode, a momentum outside [0, 1), or sizes below 1.
    """

    def __init__(self, num_classes: int, dim: int, distance: str = "cosine", mode: str = "learned",
                 momentum: float = 0.9) -> None:
        super().__init__()
        check_choice("model.distance", distance, DISTANCES)
        check_choice("model.centroids", mode, CENTROID_MODES)
        if not 0.0 <= momentum < 1.0:
            raise UsageError(f"model.centroid_momentum must be in [0, 1), got {momentum}")
        if num_classes < 2 or dim < 1:
            raise UsageError(f"centroids need at least 2 classes and 1 feature, got {num_classes} and {dim}")
        self.distance = distance
        self.mode = mode
        self.momentum = momentum
        initial = torch.randn(num_classes, dim) / dim**0.5
        if mode == "learned":
            self.centroids = nn.Parameter(initial)
        else:
            self.register_buffer("centroids", torch.zeros(num_classes, dim))
            self.register_buffer("seen", torch.zeros(num_classes, dtype=torch.bool))

    def forward(self, representations: torch.Tensor) -> torch.Tensor:
        """Map `(batch, D)` representations to `(batch, num_classes)` goodness."""
        return centroid_goodness(representations, self.centroids, self.distance)

    @torch.no_grad()
    def update(self, representations: torch.Tensor, labels: torch.Tensor) -> None:
        """Move running-mean centroids towards the `(batch, D)` batch's class means; a no-op when learned."""
        if self.mode != "running_mean":
            return
        num_classes = self.centroids.shape[0]
        sums = torch.zeros_like(self.centroids).index_add_(0, labels, representations.float())
        counts = torch.bincount(labels, minlength=num_classes)
        present = counts > 0
        means = sums[present] / counts[present].unsqueeze(1)
        old = self.centroids[present]
        first = ~self.seen[present]
        blended = self.momentum * old + (1.0 - self.momentum) * means
        self.centroids[present] = torch.where(first.unsqueeze(1), means, blended)
        self.seen[present] = True
