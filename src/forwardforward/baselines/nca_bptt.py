"""Backprop-through-time baseline of the FF cellular automaton.

It has the same perception (identity and Sobel filters), the same blocks (linear maps applied
to every live cell, ReLU, length normalisation between blocks) and the same hidden-state update
under a random mask, but no label channels. A per-cell linear read-out maps the new hidden state
to class logits. Cross-entropy over the live cells of every step is backpropagated through all
steps, so training memory grows with the number of steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from ..normalization import rms_normalize
from ..variants.nca import CellGrid, Trajectory, live_indices, scatter_cells, update_mask


class BPTTCellularAutomaton(nn.Module):
    """An NCA with a per-cell softmax read-out, trained end to end through its steps.

    Args:
        num_classes: logits of the read-out.
        hidden: units of each block; the last width is the number of hidden channels.
        damping: share of the old hidden state that an updating cell keeps (see `CellGrid`).

    Raises:
        UsageError: no block, a non-positive width, or `damping` outside [0, 1).
    """

    def __init__(self, num_classes: int, hidden: tuple[int, ...], damping: float = 0.0) -> None:
        super().__init__()
        if not hidden or min(hidden) < 1:
            raise UsageError(f"the update rule needs positive block widths, got {list(hidden)}")
        self.num_classes = num_classes
        self.grid = CellGrid(0, hidden[-1], damping=damping)
        widths = (self.grid.in_features, *hidden)
        self.layers = nn.ModuleList(nn.Linear(widths[i], widths[i + 1]) for i in range(len(hidden)))
        self.readout = nn.Linear(hidden[-1], num_classes)

    def rule(self, features: torch.Tensor) -> torch.Tensor:
        """Map `(cells, 3C)` features to the `(cells, hidden_channels)` length-normalised new state."""
        x = features
        for layer in self.layers:
            x = rms_normalize(torch.relu(layer(x)))
        return x

    def unroll(
        self, images: torch.Tensor, alive: torch.Tensor, steps: int, rate: float, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run `steps` updates and return the per-step logits of the live cells.

        Args:
            images: `(batch, 1, H, W)`.
            alive: `(batch, H, W)` bool.

        Returns:
            `(logits, cells)`: `(steps, live, num_classes)` logits, with the graph through every
            step, and the `(live,)` flat indices of the live cells.
        """
        cells = live_indices(alive)
        state = self.grid.initial_state(images, alive, None)
        logits = []
        for _ in range(steps):
            hidden = self.rule(self.grid.cell_features(state, cells))
            logits.append(self.readout(hidden))
            state = self.grid.write_hidden(state, cells, hidden, update_mask(alive, rate, generator))
        return torch.stack(logits), cells

    def loss(
        self, images: torch.Tensor, alive: torch.Tensor, labels: torch.Tensor, steps: int, rate: float,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Mean cross-entropy of every live cell at every step against its image's label.

        Args:
            labels: `(batch,)` true labels.

        Returns:
            Scalar loss whose graph reaches back through all steps.
        """
        logits, cells = self.unroll(images, alive, steps, rate, generator)
        height, width = alive.shape[1:]
        cell_labels = labels.repeat_interleave(height * width)[cells]  # (live,)
        return F.cross_entropy(logits.flatten(0, 1), cell_labels.repeat(steps))

    @torch.no_grad()
    def trajectory(
        self, images: torch.Tensor, alive: torch.Tensor, steps: int, rate: float, generator: torch.Generator | None
    ) -> Trajectory:
        """Score every step: per-cell log-probabilities, summed over the live cells per image."""
        batch, _, height, width = images.shape
        logits, cells = self.unroll(images, alive, steps, rate, generator)
        log_probs = logits.log_softmax(dim=-1)  # (steps, live, classes)
        cell_scores = torch.stack([
            scatter_cells(step, cells, (batch, height, width)).permute(0, 3, 1, 2) for step in log_probs
        ])  # (steps, batch, classes, H, W)
        return Trajectory(cell_scores.sum(dim=(3, 4)), cell_scores, alive)
