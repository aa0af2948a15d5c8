"""Recurrent Self-Contrastive FF: a recurrent layer trained at every time step, no BPTT.

At step t the layer reads a pair of input frames (positive: the frame twice; negative: the
frame and the same step of another sequence) and its own previous state:
z_t = W (x1_t + x2_t) + 2 b + U standardise(h_{t-1}). The state h_t = activation(z_t) is
detached before the next step, so each step's split-threshold loss trains W, b and U through
that step alone. A bidirectional layer is two such blocks, one reading the sequence backwards.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import UsageError
from ..layers import LocalBlock
from ..normalization import standardize
from ..objectives import split_threshold_loss
from .scff import ACTIVATIONS, SharedPairLinear


class SCFFRecurrentBlock(LocalBlock):
    """One direction of a recurrent SCFF layer.

    Args:
        in_features: features of one half of a frame pair.
        units: size of the hidden state.
        activation: `triangle` or `relu`, applied to z_t to give the state h_t.
        threshold_pos: theta+ of the split-threshold loss.
        threshold_neg: theta-.
        penalty: lambda, the weight of the mean positive goodness.
        reverse: read the sequence from its last step to its first.

    Raises:
        UsageError: an unknown activation.
    """

    def __init__(
        self,
        in_features: int,
        units: int,
        activation: str = "triangle",
        threshold_pos: float = 1.0,
        threshold_neg: float = 1.0,
        penalty: float = 0.0,
        reverse: bool = False,
    ) -> None:
        module = nn.ModuleDict({
            "input": SharedPairLinear(in_features, units),
            "recurrent": nn.Linear(units, units, bias=False),
        })
        super().__init__(
            module, units, goodness="channel_mean_of_squares", threshold=threshold_pos, objective="split_threshold"
        )
        if activation not in ACTIVATIONS:
            raise UsageError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        self.activation = ACTIVATIONS[activation]
        self.threshold_neg = float(threshold_neg)
        self.penalty = float(penalty)
        self.reverse = reverse

    def step(self, frame: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Return z_t `(batch, units)` from a `(batch, 2 * in_features)` frame pair and h_{t-1}.

        The previous state is standardised and detached here: this line is what keeps the
        gradient of one step's loss from reaching any earlier step.
        """
        return self.module["input"](frame) + self.module["recurrent"](standardize(state).detach())

    def _order(self, steps: int) -> range:
        return range(steps - 1, -1, -1) if self.reverse else range(steps)

    def step_losses(
        self, x_pos: torch.Tensor, x_neg: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor, dict[str, torch.Tensor]]:
        """Run positive and negative sequences and return each step's loss.

        Args:
            x_pos: `(batch, steps, 2 * in_features)` positive frame pairs.
            x_neg: `(batch_neg, steps, 2 * in_features)` negative frame pairs.

        Returns:
            `(losses, final_state, metrics)`: one scalar loss per step in reading order, the
            detached final state `(batch + batch_neg, units)` and mean goodness metrics.
        """
        batch = x_pos.shape[0]
        x = torch.cat([x_pos.detach(), x_neg.detach()])  # (batch + batch_neg, steps, 2 F)
        state = x.new_zeros(x.shape[0], self.units)
        losses, g_pos_sum, g_neg_sum = [], 0.0, 0.0
        for t in self._order(x.shape[1]):
            z = self.step(x[:, t], state)
            goodness = self.goodness_fn(torch.relu(z))
            g_pos, g_neg = goodness[:batch], goodness[batch:]
            losses.append(split_threshold_loss(g_pos, g_neg, self.threshold, self.threshold_neg, self.penalty))
            g_pos_sum = g_pos_sum + g_pos.detach().mean()
            g_neg_sum = g_neg_sum + g_neg.detach().mean()
            state = self.activation(z).detach()
        steps = max(1, x.shape[1])
        metrics = {"goodness_pos": g_pos_sum / steps, "goodness_neg": g_neg_sum / steps}
        return losses, state, metrics

    def local_loss(
        self, x_pos: torch.Tensor, x_neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Mean of the per-step losses, and the final states of positives and negatives."""
        losses, state, metrics = self.step_losses(x_pos, x_neg)
        loss = torch.stack(losses).mean()
        batch = x_pos.shape[0]
        return loss, state[:batch], state[batch:], {"loss": loss.detach(), **metrics}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the final state `(batch, units)` of `(batch, steps, 2 * in_features)` pairs."""
        state = x.new_zeros(x.shape[0], self.units)
        for t in self._order(x.shape[1]):
            state = self.activation(self.step(x[:, t], state)).detach()
        return state


class BidirectionalSCFF(nn.Module):
    """Two recurrent SCFF blocks, one reading forwards and one backwards.

    Its `blocks` are trained like the layers of an SCFF network, and `activities` returns
    both final states, which the linear probe reads.

    Args:
        in_features: features of one frame.
        units: hidden size of each direction.
        model: an `SCFFModelConfig` whose per-layer lists have two entries (forward, backward).
    """

    def __init__(self, in_features: int, units: int, model) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([
            SCFFRecurrentBlock(
                in_features, units, model.activation[i], model.threshold_pos[i], model.threshold_neg[i],
                model.penalty[i], reverse=i == 1,
            )
            for i in range(2)
        ])

    def activities(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Final states `(batch, units)` of both directions for `(batch, steps, 2 F)` pairs."""
        return [block(x) for block in self.blocks]
