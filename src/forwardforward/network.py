"""A stack of local blocks with label overlay and length normalisation between layers."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .errors import UsageError
from .labels import overlay_every_label, overlay_neutral
from .layers import FFLinear, LocalBlock
from .normalization import _EPS as _RMS_EPS
from .normalization import rms_normalize


class FFNetwork(nn.Module):
    """Local blocks applied in sequence, each to the RMS-normalised activity of the one below.

    The input itself is RMS-normalised too. Blocks are trained separately (see
    `forwardforward.training`); this class only computes activities and goodness.

    Args:
        blocks: the local blocks, bottom first.
        num_classes: number of labels that `goodness_per_label` tries.
        label_strength: value of the one-hot label pixel.
        normalize_input: RMS-normalise the input before the first block.

    Raises:
        UsageError: no blocks, or fewer than 2 classes.
    """

    def __init__(
        self,
        blocks: Sequence[LocalBlock],
        num_classes: int = 10,
        label_strength: float = 1.0,
        normalize_input: bool = True,
    ) -> None:
        super().__init__()
        if len(blocks) == 0:
            raise UsageError("an FF network needs at least one block")
        if num_classes < 2:
            raise UsageError(f"num_classes must be at least 2, got {num_classes}")
        self.blocks = nn.ModuleList(blocks)
        self.num_classes = num_classes
        self.label_strength = float(label_strength)
        self.normalize_input = normalize_input

    @classmethod
    def fully_connected(
        cls,
        in_features: int,
        hidden: Sequence[int],
        num_classes: int = 10,
        label_strength: float = 1.0,
        init: str = "hinton",
        **block_kwargs,
    ) -> "FFNetwork":
        """Build a network of `FFLinear` blocks of the given widths.

        Raises:
            UsageError: an empty or non-positive list of widths, or a bad block setting.
        """
        if not hidden or any(int(w) <= 0 for w in hidden):
            raise UsageError(f"hidden widths must be a non-empty list of positive integers, got {list(hidden)}")
        blocks = []
        width = in_features
        for units in hidden:
            blocks.append(FFLinear(width, int(units), init=init, **block_kwargs))
            width = int(units)
        return cls(blocks, num_classes=num_classes, label_strength=label_strength)

    @property
    def widths(self) -> list[int]:
        """Number of units of each block, bottom first."""
        return [block.units for block in self.blocks]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RMS-normalise `(batch, features)` rows (the input and every block's output)."""
        return rms_normalize(x)

    def activities(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Run the blocks and return each block's activity before normalisation.

        Args:
            x: `(batch, in_features)` inputs that already carry their label overlay.
            upto: number of blocks to run; all when None.

        Returns:
            One `(batch, units_l)` tensor per block run.
        """
        h = self.normalize(x) if self.normalize_input else x
        out = []
        for block in list(self.blocks)[: upto if upto is not None else len(self.blocks)]:
            a = block(h)
            out.append(a)
            h = self.normalize(a)
        return out

    def neutral_activities(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Return each block's activity `(batch, units_l)` for images carrying the neutral label.

        Args:
            images: `(batch, in_features)`; their label features are overwritten.
        """
        return self.activities(overlay_neutral(images, self.num_classes, self.label_strength))

    @torch.no_grad()
    def goodness_per_label(self, images: torch.Tensor) -> torch.Tensor:
        """Compute every block's goodness for every candidate label, in one batched pass.

        When the first block is a plain `nn.Linear` on the normalised input, its product with
        the image is computed once and shared by all labels (see `_first_layer_every_label`).

        Args:
            images: `(batch, in_features)` inputs; their label features are overwritten.

        Returns:
            `(batch, num_blocks, num_classes)` goodness of each sample, block and label.
        """
        batch = images.shape[0]
        first = self.blocks[0]
        if self.normalize_input and type(first.module) is nn.Linear:
            a = torch.relu(self._first_layer_every_label(images))  # (classes * batch, units)
            activities = [a, *self._activities_from(self.normalize(a), start=1)]
        else:
            activities = self.activities(overlay_every_label(images, self.num_classes, self.label_strength))
        per_block = []
        for block, a in zip(self.blocks, activities):
            per_block.append(block.goodness(a).view(self.num_classes, batch))  # (classes, batch)
        return torch.stack(per_block).permute(2, 0, 1)  # (batch, blocks, classes)

    def _activities_from(self, h: torch.Tensor, start: int) -> list[torch.Tensor]:
        out = []
        for block in list(self.blocks)[start:]:
            a = block(h)
            out.append(a)
            h = self.normalize(a)
        return out

    def _first_layer_every_label(self, images: torch.Tensor) -> torch.Tensor:
        """Pre-activations of the first block for every label, with one shared matrix product.

        Every one-hot overlay writes one `label_strength` and zeros into the label features,
        so all labels give the input the same root mean square r. The pre-activation for
        label c is then `W x0 / r + b + (strength / r) W[:, c]`, where x0 is the image with
        its label features zeroed: one `(batch, in) @ (in, units)` product instead of
        `num_classes` of them.

        Returns:
            `(num_classes * batch, units)`, label-major like `overlay_every_label`.
        """
        linear = self.blocks[0].module
        classes, strength = self.num_classes, self.label_strength
        x0 = overlay_neutral(images, classes, 0.0)  # the label features set to zero
        rms = (x0.square().sum(dim=1, keepdim=True) + strength**2).div(x0.shape[1]).sqrt() + _RMS_EPS
        shared = self.blocks[0].pre_activation(x0 / rms)  # (batch, units), bias included
        columns = linear.weight[:, :classes].t().to(shared.dtype)  # (classes, units)
        z = shared.unsqueeze(0) + (strength / rms).unsqueeze(0) * columns.unsqueeze(1)  # (classes, batch, units)
        return z.reshape(classes * images.shape[0], -1)
