"""Self-Contrastive Forward-Forward (SCFF): blocks and networks.

From Chen, Liu, Laydevant and Grollier (2025), "Self-Contrastive Forward-Forward Algorithm",
Nature Communications. SCFF needs no labels and no hand-made negatives: a positive input is a
sample concatenated with itself, a negative one is the sample concatenated with another sample
(`forwardforward.negatives.self_contrastive_pairs`). The first layer applies one weight to both
halves and adds the results. Every block standardises its input per sample, scores the channel
mean of ReLU(z)^2 at each location, trains on the split-threshold loss and passes on
ReLU(z - mean over channels of z) (`triangle`) or ReLU(z).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from ..layers import LocalBlock
from ..normalization import standardize
from ..objectives import split_threshold_loss


class SharedPairLinear(nn.Module):
    """A linear map applied with one weight to both halves of a pair: W x1 + W x2 + 2 b.

    Because the map is linear, this equals W (x1 + x2) + 2 b, which costs one matrix product.

    Args:
        in_features: size of one half.
        units: output size.

    Input `(batch, 2 * in_features)`, output `(batch, units)`.
    """

    def __init__(self, in_features: int, units: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.linear = nn.Linear(in_features, units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map `(batch, 2 * in_features)` pairs to `(batch, units)`.

        Raises:
            ValueError: the input is not two halves of `in_features`.
        """
        if x.shape[-1] != 2 * self.in_features:
            raise ValueError(f"expected pairs of 2 x {self.in_features} features, got shape {tuple(x.shape)}")
        first, second = x[..., : self.in_features], x[..., self.in_features :]
        return F.linear(first + second, self.linear.weight, 2 * self.linear.bias)


class PaddedConv2d(nn.Module):
    """A convolution after reflect padding, optionally shared by the two halves of a pair.

    With `shared_pair=True` the input has `2 * in_channels` channels, and the output is
    conv(x1) + conv(x2) = conv_without_bias(x1 + x2) + 2 b.

    Args:
        in_channels: channels of the input (of one half when `shared_pair`).
        out_channels: output channels.
        kernel_size: square kernel size.
        padding: reflect padding on every side, in pixels.
        shared_pair: the input is a pair concatenated along the channel axis.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, padding: int, shared_pair: bool = False
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.padding = padding
        self.shared_pair = shared_pair
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map `(batch, C_in or 2 C_in, H, W)` to `(batch, out_channels, H', W')`.

        Raises:
            ValueError: the channel count does not match.
        """
        expected = 2 * self.in_channels if self.shared_pair else self.in_channels
        if x.dim() != 4 or x.shape[1] != expected:
            raise ValueError(f"expected (batch, {expected}, height, width), got shape {tuple(x.shape)}")
        if self.padding:
            x = F.pad(x, (self.padding,) * 4, mode="reflect")
        if not self.shared_pair:
            return self.conv(x)
        summed = x[:, : self.in_channels] + x[:, self.in_channels :]
        return F.conv2d(summed, self.conv.weight, 2 * self.conv.bias)


def triangle(z: torch.Tensor) -> torch.Tensor:
    """ReLU(z - mean over channels of z), the activity SCFF passes on; channels are axis 1."""
    return torch.relu(z - z.mean(dim=1, keepdim=True))


ACTIVATIONS = {"triangle": triangle, "relu": torch.relu}


class SCFFBlock(LocalBlock):
    """One SCFF layer: standardise, map, score goodness per location, and pass on an activity.

    Built on `LocalBlock`, so it owns its optimizer and trains on detached inputs only.

    Args:
        module: maps standardised inputs to pre-activations z, `(batch, units)` or
            `(batch, units, H, W)`.
        units: units or channels.
        activation: `triangle` or `relu`: the activity passed on.
        threshold_pos: theta+ of the split-threshold loss.
        threshold_neg: theta-.
        penalty: lambda, the weight of the mean positive goodness.
        pool: module applied to the activity before it is passed on (conv pooling), or None.

    Raises:
        UsageError: an unknown activation.
    """

    def __init__(
        self,
        module: nn.Module,
        units: int,
        activation: str = "triangle",
        threshold_pos: float = 1.0,
        threshold_neg: float = 1.0,
        penalty: float = 0.0,
        pool: nn.Module | None = None,
    ) -> None:
        super().__init__(
            module, units, goodness="channel_mean_of_squares", threshold=threshold_pos, objective="split_threshold"
        )
        if activation not in ACTIVATIONS:
            raise UsageError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        self.activation_name = activation
        self.activation = ACTIVATIONS[activation]
        self.threshold_neg = float(threshold_neg)
        self.penalty = float(penalty)
        self.pool = pool if pool is not None else nn.Identity()

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise each sample of `x` and apply the module: z."""
        return self.module(standardize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the activity passed on: pool(activation(z))."""
        return self.pool(self.activation(self.pre_activation(x)))

    def objective(self, goodness_pos: torch.Tensor, goodness_neg: torch.Tensor) -> torch.Tensor:
        """Split-threshold loss of `(batch, ...)` positive and `(batch_neg, ...)` negative goodness."""
        return split_threshold_loss(goodness_pos, goodness_neg, self.threshold, self.threshold_neg, self.penalty)

    def local_loss(
        self, x_pos: torch.Tensor, x_neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Compute the block's loss on positive and negative pairs, as `LocalBlock.local_loss`.

        The inputs are detached here, so the loss never reaches a block below. Goodness is
        the channel mean of ReLU(z)^2 at each location; the activities returned are the
        pooled activities passed on, detached.
        """
        batch = x_pos.shape[0]
        z = self.pre_activation(torch.cat([x_pos.detach(), x_neg.detach()]))  # (batch + batch_neg, units, ...)
        goodness = self.goodness_fn(torch.relu(z))
        g_pos, g_neg = goodness[:batch], goodness[batch:]
        loss = self.objective(g_pos, g_neg)
        out = self.pool(self.activation(z.detach()))
        metrics = {
            "loss": loss.detach(),
            "goodness_pos": g_pos.detach().mean(),
            "goodness_neg": g_neg.detach().mean(),
        }
        return loss, out[:batch], out[batch:], metrics


def _pool(kind: str, size: int, stride: int, padding: int) -> nn.Module | None:
    if kind == "max":
        return nn.MaxPool2d(size, stride, padding)
    if kind == "avg":
        return nn.AvgPool2d(size, stride, padding)
    return None


def build_mlp_blocks(in_features: int, model) -> list[SCFFBlock]:
    """Build fully connected SCFF blocks from an `SCFFModelConfig`; the first takes pairs."""
    blocks = []
    width = in_features
    for index, units in enumerate(model.hidden):
        module = SharedPairLinear(width, units) if index == 0 else nn.Linear(width, units)
        blocks.append(SCFFBlock(
            module, units, model.activation[index], model.threshold_pos[index],
            model.threshold_neg[index], model.penalty[index],
        ))
        width = units
    return blocks


def build_conv_blocks(image_shape: tuple[int, int, int], model) -> list[SCFFBlock]:
    """Build convolutional SCFF blocks from an `SCFFModelConfig`; the first takes pairs.

    Raises:
        UsageError: a layer whose kernel or pooling leaves no pixels.
    """
    blocks = []
    channels, height, _ = image_shape
    for index, units in enumerate(model.hidden):
        kernel, padding = model.kernel_size[index], model.padding[index]
        module = PaddedConv2d(channels, units, kernel, padding, shared_pair=index == 0)
        height = height + 2 * padding - kernel + 1
        pool = _pool(model.pool[index], model.pool_size[index], model.pool_stride[index], model.pool_padding[index])
        if pool is not None:
            height = math.floor((height + 2 * model.pool_padding[index] - model.pool_size[index])
                                / model.pool_stride[index]) + 1
        if height < 1:
            raise UsageError(f"conv layer {index + 1} leaves no pixels; reduce its kernel_size or pool_size")
        blocks.append(SCFFBlock(
            module, units, model.activation[index], model.threshold_pos[index],
            model.threshold_neg[index], model.penalty[index], pool,
        ))
        channels = units
    return blocks


class SCFFNetwork(nn.Module):
    """A stack of SCFF blocks; the first receives pairs, the rest the activity below.

    Args:
        blocks: the blocks, bottom first.

    Raises:
        UsageError: no blocks.
    """

    def __init__(self, blocks: list[SCFFBlock]) -> None:
        super().__init__()
        if not blocks:
            raise UsageError("an SCFF network needs at least one block")
        self.blocks = nn.ModuleList(blocks)

    def activities(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Return the activity passed on by each block, for `upto` blocks (all when None)."""
        out = []
        for block in list(self.blocks)[: upto if upto is not None else len(self.blocks)]:
            x = block(x)
            out.append(x)
        return out
