"""Layers of a Distance-Forward network: conv or fully connected blocks, each with class centroids.

A block is conv (same padding) or linear, then batch norm, ReLU and optionally 2 x 2 max
pooling. Its representation for the centroids is the block output, average-pooled to a small
grid for conv blocks. The same blocks, without centroids, make the backprop baseline.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from .df_goodness import ClassCentroids


class DFBlock(nn.Module):
    """One layer: conv or linear, batch norm, ReLU and optional 2 x 2 max pooling.

    Args:
        kind: `conv` or `fc`.
        in_size: input channels (conv) or features (fc).
        out_size: output channels (conv) or units (fc).
        kernel_size: conv kernel side (odd; same padding).
        pool: conv only: follow the ReLU with 2 x 2 max pooling.
        batch_norm: add batch norm before the ReLU.
        grid: conv only: side of the average pooling that forms the representation; 0 keeps
            the whole map.
    """

    def __init__(self, kind: str, in_size: int, out_size: int, kernel_size: int = 3, pool: bool = False,
                 batch_norm: bool = True, grid: int = 2) -> None:
        super().__init__()
        self.kind = kind
        self.grid = grid
        if kind == "conv":
            self.linear: nn.Module = nn.Conv2d(in_size, out_size, kernel_size, padding=kernel_size // 2,
                                               bias=not batch_norm)
            self.norm: nn.Module = nn.BatchNorm2d(out_size) if batch_norm else nn.Identity()
        else:
            self.linear = nn.Linear(in_size, out_size, bias=not batch_norm)
            self.norm = nn.BatchNorm1d(out_size) if batch_norm else nn.Identity()
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map `(batch, C, H, W)` to `(batch, C', H', W')` (conv) or `(batch, in)` to `(batch, out)` (fc)."""
        return self.pool(torch.relu(self.norm(self.linear(x))))

    def representation(self, h: torch.Tensor) -> torch.Tensor:
        """Flatten a block output into the `(batch, D)` vector that the centroids live in."""
        if self.kind == "conv" and self.grid > 0:
            h = F.adaptive_avg_pool2d(h, self.grid)  # (batch, C, grid, grid)
        return h.flatten(1)


class RepresentationPool(nn.Module):
    """The representation step of a `DFBlock` as a module, for the backprop baseline's body."""

    def __init__(self, block: DFBlock) -> None:
        super().__init__()
        self.kind, self.grid = block.kind, block.grid

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Map a `(batch, C, H, W)` or `(batch, features)` block output to `(batch, D)`."""
        if self.kind == "conv" and self.grid > 0:
            h = F.adaptive_avg_pool2d(h, self.grid)
        return h.flatten(1)


def build_blocks(model, input_shape: tuple[int, ...]) -> list[DFBlock]:
    """Create the blocks that `[model]` describes, bottom first.

    Args:
        model: a `DFModelConfig`.
        input_shape: `(C, H, W)` for conv, `(features,)` for fc.

    Raises:
        UsageError: pooling that shrinks the image below 1 pixel.
    """
    blocks = []
    if model.kind == "conv":
        channels, height, width = input_shape
        for index, out in enumerate(model.hidden, start=1):
            pool = index in model.pool_after
            blocks.append(DFBlock("conv", channels, out, model.kernel_size, pool, model.batch_norm, model.grid))
            channels = out
            if pool:
                height, width = height // 2, width // 2
            if height < 1 or width < 1:
                raise UsageError(
                    f"model.pool_after {list(model.pool_after)} shrinks the {tuple(input_shape)} images "
                    f"below one pixel at layer {index}; pool less often"
                )
    else:
        features = math.prod(input_shape)
        for out in model.hidden:
            blocks.append(DFBlock("fc", features, out, batch_norm=model.batch_norm))
            features = out
    return blocks


class DFNetwork(nn.Module):
    """Distance-Forward network: blocks, the class centroids of each, and fixed feedback weights.

    `feedback[l]` is a `(D_l, D_{l+1})` registered buffer of random weights, N(0, 1 / D_{l+1}),
    that carries the error of layer l + 1's representation down to layer l in DF-R. It is
    never trained.

    Args:
        model: a `DFModelConfig`.
        input_shape: `(C, H, W)` for conv, `(features,)` for fc.
        num_classes: number of classes (centroids per layer).

    Raises:
        UsageError: see `build_blocks` and `ClassCentroids`.
    """

    def __init__(self, model, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.blocks = nn.ModuleList(build_blocks(model, self.input_shape))
        dims = self._representation_sizes()
        self.centroids = nn.ModuleList(
            ClassCentroids(num_classes, dim, model.distance, model.centroids, model.centroid_momentum) for dim in dims
        )
        for index in range(len(dims) - 1):
            weights = torch.randn(dims[index], dims[index + 1]) / dims[index + 1] ** 0.5
            self.register_buffer(f"feedback{index}", weights)

    def _representation_sizes(self) -> list[int]:
        was_training = self.training
        self.eval()
        with torch.no_grad():
            h = torch.zeros(1, *self.input_shape)
            sizes = []
            for block in self.blocks:
                h = block(h)
                sizes.append(block.representation(h).shape[1])
        self.train(was_training)
        return sizes

    def feedback(self, index: int) -> torch.Tensor:
        """Fixed `(D_index, D_{index + 1})` feedback weights from layer index + 1 down to layer index (0-based)."""
        return getattr(self, f"feedback{index}")

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Reshape `(batch, C * H * W)` images to the first block's input shape."""
        return images.view(images.shape[0], *self.input_shape)

    @torch.no_grad()
    def goodness_per_layer(self, images: torch.Tensor) -> torch.Tensor:
        """Goodness of every class at every layer for `(batch, C * H * W)` images: `(batch, layers, classes)`."""
        h = self.prepare(images)
        goodness = []
        for block, centroids in zip(self.blocks, self.centroids):
            h = block(h)
            goodness.append(centroids(block.representation(h)))
        return torch.stack(goodness, dim=1)
