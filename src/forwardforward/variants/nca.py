"""Neural cellular automaton (NCA) whose update rule is a stack of Forward-Forward blocks.

Every cell of a `(height, width)` grid has a state vector of C channels: one pixel channel,
the candidate label's one-hot (label channels, held fixed, like the label at the top of
Hinton's recurrent FF network) and hidden channels. At each step every live cell perceives its
3 x 3 neighbourhood through fixed depthwise filters (identity, Sobel x, Sobel y), which gives
3C features. The rule maps these features to new activities cell by cell. A 1x1 convolution is
a linear map applied to every cell, so the live cells are gathered into one `(cells, features)`
batch. The last block's length-normalised activity becomes the cell's new hidden channels,
under a random per-cell update mask. Cells outside the digit stay empty (all channels 0).

FF training gives every block its layer-local loss at every step. The loss sees the live cells
of a positive trajectory (the true label) and of a negative one (a wrong label). The state is
detached before the next step, so no gradient crosses steps and memory does not grow with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import check_choice
from ..errors import UsageError
from ..layers import FFLinear
from ..normalization import rms_normalize
from .nca_config import FEATURE_NORMS, HIDDEN_STATES, check_damping

# Sobel filters scaled by 1/8, so that a unit ramp along x gives a response of 1.
SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
SOBEL_Y = SOBEL_X.t().contiguous()
IDENTITY = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])


def perception_filters(channels: int) -> torch.Tensor:
    """Return the `(3 * channels, 1, 3, 3)` depthwise kernels: identity, Sobel x, Sobel y per channel.

    Output channel `3 c + k` applies filter k (0 identity, 1 Sobel x, 2 Sobel y) to channel c.

    Raises:
        UsageError: `channels` is below 1.
    """
    if channels < 1:
        raise UsageError(f"a cell state needs at least one channel, got channels={channels}")
    bank = torch.stack([IDENTITY, SOBEL_X, SOBEL_Y])  # (3, 3, 3)
    return bank.repeat(channels, 1, 1).unsqueeze(1)  # (3 * channels, 1, 3, 3)


def perceive(state: torch.Tensor) -> torch.Tensor:
    """Apply the perception filters to every channel of a `(batch, C, H, W)` grid.

    Cells beyond the border count as empty (zero padding). Sobel x is the cross-correlation
    with `SOBEL_X`, so it grows to the right (increasing column index).

    Returns:
        `(batch, 3 * C, H, W)` features, ordered per channel as identity, Sobel x, Sobel y.
    """
    channels = state.shape[1]
    filters = perception_filters(channels).to(device=state.device, dtype=state.dtype)
    # In channels-last layout the depthwise convolution runs several times faster on a CPU, and
    # its output permuted to (batch, H, W, 3C) is contiguous, so gathering cells needs no copy.
    state = state.contiguous(memory_format=torch.channels_last)
    return F.conv2d(state, filters, padding=1, groups=channels)


def crop_center(images: torch.Tensor, image_shape: tuple[int, int, int], crop: int) -> torch.Tensor:
    """Cut the central `crop x crop` square out of flat images.

    Args:
        images: `(batch, C * H * W)` flat images.
        image_shape: `(C, H, W)`.
        crop: side of the square kept, at most `min(H, W)`.

    Returns:
        `(batch, C, crop, crop)`.

    Raises:
        UsageError: `crop` is larger than the image or below 1.
    """
    channels, height, width = image_shape
    if not 1 <= crop <= min(height, width):
        raise UsageError(f"crop {crop} does not fit {height} x {width} images; use 1 to {min(height, width)}")
    top, left = (height - crop) // 2, (width - crop) // 2
    return images.view(-1, channels, height, width)[:, :, top : top + crop, left : left + crop]


def alive_cells(images: torch.Tensor, threshold: float, dilation: int = 0) -> torch.Tensor:
    """Mark the cells of the digit: pixels above `threshold`, grown by `dilation` cells.

    Args:
        images: `(batch, 1, H, W)` grey images.

    Returns:
        `(batch, H, W)` bool.
    """
    alive = (images[:, 0] > threshold).float()
    if dilation > 0:
        alive = F.max_pool2d(alive.unsqueeze(1), 2 * dilation + 1, stride=1, padding=dilation).squeeze(1)
    return alive > 0


def update_mask(alive: torch.Tensor, rate: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw which live cells update at one step: each with probability `rate`, independently.

    Args:
        alive: `(batch, H, W)` bool.
        rate: in (0, 1]; 1 updates every live cell.
        generator: random source on `alive`'s device.

    Returns:
        `(batch, H, W)` bool, False wherever `alive` is False.
    """
    draw = torch.rand(alive.shape, generator=generator, device=alive.device)
    return alive & (draw < rate)


@dataclass
class Trajectory:
    """Per-step predictions of a batch of grids, for every candidate label.

    Attributes:
        scores: `(steps, batch, num_classes)` per-step image scores (goodness or log-probability
            summed over the live cells).
        cell_scores: `(steps, batch, num_classes, H, W)` per-cell scores, 0 outside the digit.
        alive: `(batch, H, W)` bool.
    """

    scores: torch.Tensor
    cell_scores: torch.Tensor
    alive: torch.Tensor


class CellGrid(nn.Module):
    """The state layout shared by the FF automaton and its backprop-through-time baseline.

    Args:
        label_channels: channels holding the candidate label's one-hot (0 for no label).
        hidden_channels: channels written by the rule.
        label_strength: value of the label's channel in a live cell.
        damping: share of the old hidden channels that an updating cell keeps, in [0, 1).

    Raises:
        UsageError: no hidden channel, or `damping` outside [0, 1).
    """

    def __init__(
        self, label_channels: int, hidden_channels: int, label_strength: float = 1.0, damping: float = 0.0
    ) -> None:
        super().__init__()
        if hidden_channels < 1:
            raise UsageError(f"the rule needs at least one hidden channel, got {hidden_channels}")
        check_damping(damping)
        self.damping = float(damping)
        self.label_channels = int(label_channels)
        self.hidden_channels = int(hidden_channels)
        self.label_strength = float(label_strength)

    @property
    def channels(self) -> int:
        """C: pixel, label and hidden channels of one cell."""
        return 1 + self.label_channels + self.hidden_channels

    @property
    def in_features(self) -> int:
        """Perception features of one cell, 3C."""
        return 3 * self.channels

    def initial_state(self, images: torch.Tensor, alive: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Build step 0: pixels and labels in the live cells, hidden channels 0.

        Args:
            images: `(batch, 1, H, W)`.
            alive: `(batch, H, W)` bool.
            labels: `(batch,)` candidate labels; required when the grid has label channels.

        Returns:
            `(batch, C, H, W)`.
        """
        batch, _, height, width = images.shape
        live = alive.unsqueeze(1).to(images.dtype)  # (batch, 1, H, W)
        parts = [images * live]
        if self.label_channels:
            if labels is None:
                raise UsageError("this grid has label channels, so initial_state needs labels")
            one_hot = F.one_hot(labels, self.label_channels).to(images.dtype) * self.label_strength
            parts.append(one_hot[:, :, None, None] * live)  # (batch, label_channels, H, W)
        parts.append(images.new_zeros(batch, self.hidden_channels, height, width))
        return torch.cat(parts, dim=1)  # (batch, C, H, W)

    def cell_features(self, state: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        """Perceive the grid and gather the live cells' features.

        Args:
            state: `(batch, C, H, W)`.
            cells: `(live,)` flat indices of the live cells into `batch * H * W`.

        Returns:
            `(live, 3C)`.
        """
        features = perceive(state).permute(0, 2, 3, 1).reshape(-1, self.in_features)  # (batch*H*W, 3C)
        return features[cells]

    def write_hidden(
        self, state: torch.Tensor, cells: torch.Tensor, hidden: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Return the next state: the cells under `mask` take `hidden`, the others keep theirs.

        With `damping` d, an updating cell takes `d * old + (1 - d) * hidden` instead.

        Args:
            state: `(batch, C, H, W)`.
            cells: `(live,)` flat indices of the live cells.
            hidden: `(live, hidden_channels)` new hidden channels of those cells.
            mask: `(batch, H, W)` bool, the cells that update (a subset of the live ones).

        Returns:
            `(batch, C, H, W)`; differentiable in `hidden` and `state`.
        """
        batch, _, height, width = state.shape
        split = 1 + self.label_channels
        old = state[:, split:].permute(0, 2, 3, 1).reshape(-1, self.hidden_channels)  # (batch*H*W, K)
        new = torch.zeros_like(old).index_put((cells,), hidden)
        if self.damping:
            new = torch.lerp(new, old, self.damping)
        updated = torch.where(mask.reshape(-1, 1), new, old)
        updated = updated.view(batch, height, width, self.hidden_channels).permute(0, 3, 1, 2)
        return torch.cat([state[:, :split], updated], dim=1)


def live_indices(alive: torch.Tensor) -> torch.Tensor:
    """Return the flat indices `(live,)` of the True cells of a `(batch, H, W)` mask."""
    return alive.reshape(-1).nonzero().squeeze(1)


def scatter_cells(values: torch.Tensor, cells: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Place per-cell `(live, ...)` values into a zero grid of `shape = (batch, H, W, ...)`."""
    flat = values.new_zeros(shape[0] * shape[1] * shape[2], *values.shape[1:])
    return flat.index_put((cells,), values).view(*shape[:3], *values.shape[1:])


class FFCellularAutomaton(nn.Module):
    """An NCA whose update rule is a stack of FF blocks applied to every live cell.

    Block 1 reads the length-normalised perception features of a cell; each later block reads
    the length-normalised activity of the block before it. The last block's length-normalised
    activity (see `next_hidden`) is the cell's next hidden state.

    Args:
        num_classes: label channels of the state.
        hidden: units of each block; the last width is the number of hidden channels.
        label_strength: value of the label's channel in a live cell.
        goodness: goodness of a cell's activities in a block, as registered in `goodness`.
        objective: `threshold` or `symba`, as registered in `objectives`.
        symba_alpha: scale of the SymBa objective.
        threshold: theta of the threshold objective; None uses the goodness's default.
        skip_first: blocks left out of the goodness used for prediction.
        share_belief: append to the hidden channels each block's `sigmoid(goodness - threshold)`
            for the cell, its FF probability that the cell's input is positive. The length
            normalisation of the written activity removes the goodness, so without these
            channels a cell cannot read how well its neighbours match the label.
        hidden_state: `last` writes the last block's length-normalised activity into the
            hidden channels; `all` writes every block's, each normalised on its own.
        feature_norm: `joint` length-normalises a cell's 3C perception features as one vector.
            `split` normalises the features of the pixel and label channels and those of the
            hidden channels separately, so the pixel and label evidence keeps one scale at every
            step instead of shrinking once the hidden channels fill.
        damping: share of the old hidden state that an updating cell keeps (see `CellGrid`).

    Raises:
        UsageError: no block, a non-positive width, `skip_first` that leaves no block, or an
            unknown `hidden_state` or `feature_norm`.
    """

    def __init__(
        self,
        num_classes: int,
        hidden: tuple[int, ...],
        label_strength: float = 1.0,
        goodness: str = "sum_of_squares",
        objective: str = "threshold",
        symba_alpha: float = 4.0,
        threshold: float | None = None,
        skip_first: int = 0,
        share_belief: bool = False,
        hidden_state: str = "last",
        feature_norm: str = "joint",
        damping: float = 0.0,
    ) -> None:
        super().__init__()
        if not hidden or min(hidden) < 1:
            raise UsageError(f"the update rule needs positive block widths, got {list(hidden)}")
        if not 0 <= skip_first < len(hidden):
            raise UsageError(f"skip_first = {skip_first} leaves none of the {len(hidden)} blocks for prediction")
        check_choice("hidden_state", hidden_state, HIDDEN_STATES)
        check_choice("feature_norm", feature_norm, FEATURE_NORMS)
        self.num_classes = num_classes
        self.skip_first = skip_first
        self.share_belief = share_belief
        self.hidden_state = hidden_state
        self.feature_norm = feature_norm
        written = hidden[-1] if hidden_state == "last" else sum(hidden)
        beliefs = len(hidden) if share_belief else 0
        self.grid = CellGrid(num_classes, written + beliefs, label_strength, damping)
        widths = (self.grid.in_features, *hidden)
        self.blocks = nn.ModuleList(
            FFLinear(widths[i], widths[i + 1], goodness=goodness, objective=objective, symba_alpha=symba_alpha,
                     threshold=threshold)
            for i in range(len(hidden))
        )

    def normalize_features(self, features: torch.Tensor) -> torch.Tensor:
        """Length-normalise `(cells, 3C)` perception features as `feature_norm` sets.

        A part that is all zero (the hidden channels at step 1) stays zero.
        """
        if self.feature_norm == "joint":
            return rms_normalize(features)
        # Perception features are ordered channel by channel, so the pixel and label channels' come first.
        split = 3 * (1 + self.grid.label_channels)
        return torch.cat([rms_normalize(features[:, :split]), rms_normalize(features[:, split:])], dim=1)

    def activities(self, features: torch.Tensor) -> list[torch.Tensor]:
        """Map `(cells, 3C)` features to each block's `(cells, units)` ReLU activities."""
        out, x = [], self.normalize_features(features)
        for block in self.blocks:
            h = block(x)
            out.append(h)
            x = rms_normalize(h)
        return out

    def next_hidden(self, activities: list[torch.Tensor]) -> torch.Tensor:
        """Build the `(cells, hidden_channels)` new hidden state from each block's activities.

        The last block's length-normalised activity (every block's, each normalised on its own,
        when `hidden_state` is `all`), followed by each block's `sigmoid(goodness - threshold)`
        when `share_belief` is set.
        """
        written = activities[-1:] if self.hidden_state == "last" else activities
        hidden = torch.cat([rms_normalize(h) for h in written], dim=1)  # (cells, written units)
        if not self.share_belief:
            return hidden
        beliefs = [torch.sigmoid(block.goodness(h) - block.threshold) for block, h in zip(self.blocks, activities)]
        return torch.cat([hidden, torch.stack(beliefs, dim=1)], dim=1)  # (cells, units + blocks)

    def cell_goodness(self, activities: list[torch.Tensor]) -> torch.Tensor:
        """Sum the goodness `(cells,)` of the blocks used for prediction."""
        return sum(block.goodness(h) for block, h in zip(self.blocks[self.skip_first :], activities[self.skip_first :]))

    def train_step(
        self,
        state_pos: torch.Tensor,
        state_neg: torch.Tensor,
        cells: torch.Tensor,
        mask: torch.Tensor,
        per_image: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Update every block once on the live cells of one step, then advance both trajectories.

        Args:
            state_pos: `(batch, C, H, W)` states carrying the true labels.
            state_neg: `(batch, C, H, W)` the same grids carrying wrong labels.
            cells: `(live,)` flat indices of the live cells.
            mask: `(batch, H, W)` bool, the cells that update at this step.
            per_image: score each grid's mean cell goodness in the loss (as the goodness of a
                convolutional FF layer sums over its locations); False scores every cell alone.

        Returns:
            `(next_pos, next_neg, stats)`: the next states, detached, and `(blocks, 3)` detached
            loss, positive and negative goodness per block.
        """
        # Like the input image of Hinton's FF network, each cell's features are length-normalised.
        x_pos = self.normalize_features(self.grid.cell_features(state_pos, cells))
        x_neg = self.normalize_features(self.grid.cell_features(state_neg, cells))
        height, width = mask.shape[1:]
        groups = cells // (height * width) if per_image else None  # (live,) grid of every cell
        stats, acts_pos, acts_neg = [], [], []
        for block in self.blocks:
            h_pos, h_neg, metrics = block.train_step(x_pos, x_neg, groups)
            stats.append(torch.stack([metrics["loss"], metrics["goodness_pos"], metrics["goodness_neg"]]))
            acts_pos.append(h_pos)
            acts_neg.append(h_neg)
            x_pos, x_neg = rms_normalize(h_pos), rms_normalize(h_neg)
        # The activities returned by train_step are detached, and so is the old state here, so
        # the next step's state carries no graph: this keeps the gradient from crossing steps.
        next_pos = self.grid.write_hidden(state_pos.detach(), cells, self.next_hidden(acts_pos), mask)
        next_neg = self.grid.write_hidden(state_neg.detach(), cells, self.next_hidden(acts_neg), mask)
        return next_pos, next_neg, torch.stack(stats)

    @torch.no_grad()
    def trajectory(
        self, images: torch.Tensor, alive: torch.Tensor, steps: int, rate: float, generator: torch.Generator | None
    ) -> Trajectory:
        """Run one trajectory per candidate label, batched, and score every step.

        All labels of an image share its update masks, so their scores differ only by the label.

        Args:
            images: `(batch, 1, H, W)`.
            alive: `(batch, H, W)` bool.
            steps: updates of the grid.
            rate: update probability of a live cell.
            generator: random source of the update masks.

        Returns:
            The per-step image and cell goodness of every label.
        """
        batch, _, height, width = images.shape
        labels = torch.arange(self.num_classes, device=images.device).repeat(batch)  # (batch * classes,)
        grids = images.repeat_interleave(self.num_classes, dim=0)  # (batch * classes, 1, H, W), image-major
        grid_alive = alive.repeat_interleave(self.num_classes, dim=0)
        cells = live_indices(grid_alive)
        state = self.grid.initial_state(grids, grid_alive, labels)
        scores, cell_scores = [], []
        for _ in range(steps):
            mask = update_mask(alive, rate, generator).repeat_interleave(self.num_classes, dim=0)
            acts = self.activities(self.grid.cell_features(state, cells))
            per_cell = scatter_cells(self.cell_goodness(acts), cells, (batch * self.num_classes, height, width))
            per_cell = per_cell.view(batch, self.num_classes, height, width)
            cell_scores.append(per_cell)
            scores.append(per_cell.sum(dim=(2, 3)))
            state = self.grid.write_hidden(state, cells, self.next_hidden(acts), mask)
        return Trajectory(torch.stack(scores), torch.stack(cell_scores), alive)
