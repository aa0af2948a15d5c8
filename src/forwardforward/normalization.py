"""Normalisation between FF layers, and peer normalisation of unit activities."""

from __future__ import annotations

import torch
from torch import nn

_EPS = 1e-12


def rms_normalize(x: torch.Tensor, eps: float = _EPS) -> torch.Tensor:
    """Divide each row by its root mean square, with no mean subtraction.

    This is the "length normalisation" of Hinton (2022): the next layer sees only the direction
    of the activity vector, not its length, so it cannot read the goodness of the layer below.
    With the RMS (not the L2 norm) each normalised row has a mean square of 1 per feature.

    Args:
        x: `(batch, features)`.
        eps: added to the RMS so that an all-zero row stays zero instead of becoming NaN.

    Returns:
        `(batch, features)` rows with mean square 1 (or 0 for all-zero rows).
    """
    # ||x|| / sqrt(features) is the RMS. One norm kernel reads x once, where square, mean and
    # sqrt would make three passes, and its gradient stays finite at an all-zero row.
    rms = torch.linalg.vector_norm(x, dim=1, keepdim=True) * (x.shape[1] ** -0.5)
    return x / (rms + eps)


def standardize(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Standardise each sample to mean 0 and standard deviation 1 over all its other axes.

    Self-Contrastive FF standardises every input and every activity passed between layers this
    way, per sample, for fully connected `(batch, features)` and conv `(batch, C, H, W)`
    tensors alike. The standard deviation is the unbiased one (`torch.std`'s default).

    Args:
        x: `(batch, ...)` with at least 2 values per sample.
        eps: added to the standard deviation, so a constant sample becomes all zeros.

    Returns:
        A tensor of the shape of `x`.
    """
    dims = tuple(range(1, x.dim()))
    centred = x - x.mean(dim=dims, keepdim=True)
    return centred / (centred.std(dim=dims, keepdim=True) + eps)


class PeerNormalization(nn.Module):
    """Running mean activity per unit, and the peer-normalisation pull towards the layer mean.

    Hinton's Matlab code keeps, for every hidden unit j, an exponential average m_j of its
    positive-pass activity (m <- momentum * m + (1 - momentum) * batch mean, starting at 0.5) and
    adds `strength * (mean_k m_k - m_j)` to the gradient of goodness with respect to every
    unit's total input, for every sample and whether or not the unit is active. That revives
    dead units and calms units that are always on. Here the pull is expressed as a loss term
    whose gradient with respect to the pre-activation is that amount (see `loss`).

    Args:
        num_units: layer width.
        strength: lambda of the pull; 0 turns it off.
        momentum: weight of the old average.
        initial: starting value of every average.
    """

    running_mean: torch.Tensor

    def __init__(
        self, num_units: int, strength: float = 0.03, momentum: float = 0.9, initial: float = 0.5
    ) -> None:
        super().__init__()
        self.strength = float(strength)
        self.momentum = float(momentum)
        self.register_buffer("running_mean", torch.full((num_units,), float(initial)))

    @torch.no_grad()
    def update(self, activity: torch.Tensor) -> None:
        """Fold the batch mean of `(batch, num_units)` positive activities into the average."""
        batch_mean = activity.mean(dim=0).to(self.running_mean.dtype)
        self.running_mean.mul_(self.momentum).add_(batch_mean, alpha=1.0 - self.momentum)

    def loss(self, pre_activation: torch.Tensor, gradient_scale: float = 1.0) -> torch.Tensor:
        """Return a scalar whose gradient applies the pull to `(batch, num_units)` pre-activations.

        The gradient of the returned value with respect to `pre_activation[i, j]` is
        `-gradient_scale * strength * (mean_k m_k - m_j) / batch`, which is what a batch-mean
        loss contributes for the Matlab term. Its value carries no meaning and is not logged.
        """
        pull = (self.running_mean.mean() - self.running_mean) * self.strength
        return -(pre_activation * pull.detach()).sum() * (gradient_scale / pre_activation.shape[0])
