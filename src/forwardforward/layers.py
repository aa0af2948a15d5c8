"""Local blocks: a module, an activation, a goodness, an objective and its own optimizer.

A block trains on inputs that are detached from whatever produced them, so its loss never
sends a gradient into a lower block. Any `nn.Module` that maps `(batch, in_features)` to
`(batch, units)` can be wrapped; `FFLinear` is the fully connected block of Hinton (2022).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UsageError
from .goodness import default_threshold, get_goodness
from .normalization import PeerNormalization
from .objectives import get_objective
from .optim import OptimizerConfig, build_optimizer

# d(h^2)/dh = 2h, but the Matlab code uses h as the gradient of the goodness. Its peer
# normalisation term is sized for that, so the term is doubled here to keep its weight
# relative to the goodness gradient the same as in the Matlab code.
_PEER_GRADIENT_SCALE = 2.0


class LocalBlock(nn.Module):
    """One layer of an FF network, trained only by its own layer-local objective.

    Args:
        module: maps `(batch, in_features)` to pre-activations `(batch, units)`.
        units: number of output units (the width of the goodness).
        goodness: registered goodness name (`sum_of_squares` or `mean_of_squares`).
        threshold: theta of the threshold objective; None picks the goodness's default
            (the number of units for the sum of squares).
        objective: `threshold` or `symba`.
        symba_alpha: scale of the SymBa objective.
        peer_strength: peer-normalisation strength in Matlab units; 0 disables it.
        peer_momentum: momentum of the running mean activity.

    Raises:
        UsageError: an unknown goodness or objective, or a non-positive width.
    """

    def __init__(
        self,
        module: nn.Module,
        units: int,
        goodness: str = "sum_of_squares",
        threshold: float | None = None,
        objective: str = "threshold",
        symba_alpha: float = 4.0,
        peer_strength: float = 0.0,
        peer_momentum: float = 0.9,
    ) -> None:
        super().__init__()
        if units <= 0:
            raise UsageError(f"a block needs at least one unit, got units={units}")
        self.module = module
        self.units = units
        self.goodness_name = goodness
        self.goodness_fn = get_goodness(goodness)
        self.objective_name = objective
        self.objective_fn = get_objective(objective)
        self.threshold = default_threshold(goodness, units) if threshold is None else float(threshold)
        self.symba_alpha = float(symba_alpha)
        self.peer = PeerNormalization(units, peer_strength, peer_momentum) if peer_strength > 0 else None
        self.optimizer: torch.optim.Optimizer | None = None
        self._compiled_loss = None  # set by `compile_local_loss`

    def configure_optimizer(self, config: OptimizerConfig) -> torch.optim.Optimizer:
        """Create this block's own optimizer over its own parameters only."""
        self.optimizer = build_optimizer(self.module, config)
        return self.optimizer

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """Map `(batch, in_features)` inputs to `(batch, units)` pre-activations z.

        Under a bfloat16 or float16 autocast the module's matrix product runs in that dtype,
        and z is cast back to float32 here, so that goodness, normalisation and the loss keep
        float32 precision.
        """
        z = self.module(x)
        if z.dtype in (torch.bfloat16, torch.float16):
            z = z.float()
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map `(batch, in_features)` inputs to `(batch, units)` ReLU activities."""
        return torch.relu(self.pre_activation(x))

    def goodness(self, activity: torch.Tensor) -> torch.Tensor:
        """Goodness `(batch,)` of `(batch, units)` activities."""
        return self.goodness_fn(activity)

    def objective(self, goodness_pos: torch.Tensor, goodness_neg: torch.Tensor) -> torch.Tensor:
        """Scalar layer-local loss from positive and negative goodness, each `(batch,)`."""
        if self.objective_name == "symba":
            return self.objective_fn(goodness_pos, goodness_neg, alpha=self.symba_alpha)
        return self.objective_fn(goodness_pos, goodness_neg, self.threshold)

    def local_loss(
        self, x_pos: torch.Tensor, x_neg: torch.Tensor, groups: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Compute the block's loss on one positive and one negative batch.

        Both batches go through the module as one concatenated batch, so one matrix product
        serves both passes. The inputs are detached here: this line is what keeps the loss
        from reaching any block below.

        Args:
            x_pos: `(batch, in_features)` positive inputs.
            x_neg: `(batch_neg, in_features)` negative inputs.
            groups: optional `(batch,)` int64 sample index of every row, for inputs whose
                rows are parts of samples (the cells of a grid). The objective then scores
                each sample's mean goodness over its rows; `x_neg` must have the same rows
                in the same groups. None scores every row on its own.

        Returns:
            `(loss, h_pos, h_neg, metrics)`: the scalar loss carrying the graph, the
            `(batch, units)` and `(batch_neg, units)` activities (detached) and detached
            scalar metrics `loss`, `goodness_pos`, `goodness_neg`.
        """
        batch = x_pos.shape[0]
        x = torch.cat([x_pos.detach(), x_neg.detach()])  # (batch + batch_neg, in_features)
        z = self.pre_activation(x)
        h = torch.relu(z)
        g = self.goodness_fn(h)
        g_pos, g_neg = g[:batch], g[batch:]
        if groups is not None:
            g_pos, g_neg = group_mean(g_pos, groups), group_mean(g_neg, groups)
        loss = self.objective(g_pos, g_neg)
        total = loss
        if self.peer is not None and self.training:
            self.peer.update(h[:batch].detach())
            total = loss + self.peer.loss(z[:batch], gradient_scale=_PEER_GRADIENT_SCALE)
        metrics = {
            "loss": loss.detach(),
            "goodness_pos": g_pos.detach().mean(),
            "goodness_neg": g_neg.detach().mean(),
        }
        return total, h[:batch].detach(), h[batch:].detach(), metrics

    def train_step(
        self, x_pos: torch.Tensor, x_neg: torch.Tensor, groups: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Take one optimizer step on the layer-local loss (`groups` as in `local_loss`).

        Returns:
            `(h_pos, h_neg, metrics)` as in `local_loss`; the activities were computed with
            the weights before this step.

        Raises:
            RuntimeError: `configure_optimizer` was not called first.
        """
        if self.optimizer is None:
            raise RuntimeError("call configure_optimizer() before train_step()")
        loss_fn = self.local_loss if self._compiled_loss is None else self._compiled_loss
        total, h_pos, h_neg, metrics = loss_fn(x_pos, x_neg) if groups is None else loss_fn(x_pos, x_neg, groups)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        # Free the gradients now rather than at the next step, so that only one block's
        # gradients exist at a time and training memory does not grow with depth.
        self.optimizer.zero_grad(set_to_none=True)
        return h_pos, h_neg, metrics

    def compile_local_loss(self, **compile_kwargs) -> None:
        """Compile `local_loss` with `torch.compile` for the training steps of this block.

        The compiled function computes the same loss, activities and metrics (the forward
        pass, goodness, objective, peer normalisation and their backward pass, fused by the
        compiler). The first step pays the compilation time.

        Args:
            **compile_kwargs: passed to `torch.compile` (for example `mode`).
        """
        self._compiled_loss = torch.compile(self.local_loss, **compile_kwargs)


def group_mean(values: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Average `(rows,)` values over the rows of each group; returns `(max(groups) + 1,)`.

    A group without rows gets 0.

    Raises:
        ValueError: `groups` does not have one entry per value.
    """
    if groups.shape != values.shape:
        raise ValueError(f"groups needs one group index per row: got shape {tuple(groups.shape)} "
                         f"for values of shape {tuple(values.shape)}")
    count = int(groups.max()) + 1 if groups.numel() else 0
    sums = values.new_zeros(count).index_add(0, groups, values)
    sizes = values.new_zeros(count).index_add(0, groups, torch.ones_like(values))
    return sums / sizes.clamp(min=1)


class FFLinear(LocalBlock):
    """A fully connected FF block: `ReLU(x W^T + b)` with its own goodness and objective.

    Args:
        in_features: input width.
        units: number of hidden units.
        init: `hinton` draws W from N(0, 1 / in_features) with zero biases, as Hinton's
            Matlab code does; `torch` keeps `nn.Linear`'s default.
        **block_kwargs: passed to `LocalBlock`.

    Raises:
        UsageError: an unknown `init`, or any error of `LocalBlock`.
    """

    def __init__(self, in_features: int, units: int, init: str = "hinton", **block_kwargs) -> None:
        if init not in ("hinton", "torch"):
            raise UsageError(f"unknown init {init!r}; choose 'hinton' or 'torch'")
        linear = nn.Linear(in_features, units)
        if init == "hinton":
            with torch.no_grad():
                linear.weight.normal_(0.0, 1.0 / math.sqrt(in_features))
                linear.bias.zero_()
        super().__init__(linear, units, **block_kwargs)


class LocallyConnected2d(nn.Module):
    """A 2-D layer with a separate filter bank at every output location (no weight sharing).

    Like a convolution, each output location sees a `kernel x kernel` patch of all input
    channels, but every location has its own weights. The patches come from `Tensor.unfold`
    and all locations are computed in one batched matrix product, so there is no Python loop
    over locations. The weight is `(locations, in_channels * kernel * kernel, out_channels)`,
    with the patch features ordered as `torch.nn.functional.unfold` orders them. Inputs and outputs are flattened channel-major maps, so the layer fits a
    `LocalBlock` and a plain `(batch, features)` pipeline.

    Args:
        in_shape: `(channels, height, width)` of the input map.
        out_channels: output channels at every location.
        kernel: side of the square receptive field.
        stride: step between neighbouring receptive fields.
        padding: zero padding on every side of the input.
        init: `hinton` draws weights from N(0, 1 / fan_in) with zero biases; `torch` uses
            U(-1 / sqrt(fan_in), 1 / sqrt(fan_in)) for both, as `nn.Conv2d` does.

    Raises:
        UsageError: a non-positive size, a kernel larger than the padded input, or an
            unknown `init`.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        out_channels: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        init: str = "hinton",
    ) -> None:
        super().__init__()
        channels, height, width = (int(v) for v in in_shape)
        if min(channels, height, width, out_channels, kernel, stride) <= 0 or padding < 0:
            raise UsageError(
                f"invalid locally connected layer: in_shape={tuple(in_shape)}, out_channels={out_channels}, "
                f"kernel={kernel}, stride={stride}, padding={padding}; sizes must be positive, padding >= 0"
            )
        if kernel > min(height, width) + 2 * padding:
            raise UsageError(
                f"kernel {kernel} does not fit the {height} x {width} input with padding {padding}; "
                "use a smaller kernel or more padding"
            )
        if init not in ("hinton", "torch"):
            raise UsageError(f"unknown init {init!r}; choose 'hinton' or 'torch'")
        self.in_shape = (channels, height, width)
        self.kernel, self.stride, self.padding = kernel, stride, padding
        out_height = (height + 2 * padding - kernel) // stride + 1
        out_width = (width + 2 * padding - kernel) // stride + 1
        self.out_shape = (out_channels, out_height, out_width)
        locations = out_height * out_width
        fan_in = channels * kernel * kernel
        self.weight = nn.Parameter(torch.empty(locations, fan_in, out_channels))
        self.bias = nn.Parameter(torch.zeros(locations, out_channels))
        with torch.no_grad():
            if init == "hinton":
                self.weight.normal_(0.0, 1.0 / math.sqrt(fan_in))
            else:
                bound = 1.0 / math.sqrt(fan_in)
                self.weight.uniform_(-bound, bound)
                self.bias.uniform_(-bound, bound)

    @property
    def in_features(self) -> int:
        """Length of a flattened input map."""
        return math.prod(self.in_shape)

    @property
    def out_features(self) -> int:
        """Length of a flattened output map, `out_channels * out_height * out_width`."""
        return math.prod(self.out_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map `(batch, in_channels * height * width)` to `(batch, out_channels * out_height * out_width)`.

        Raises:
            ValueError: the input is not `(batch, in_features)`.
        """
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"LocallyConnected2d expects input of shape (batch, {self.in_features}) for maps of shape "
                f"{self.in_shape}, got {tuple(x.shape)}"
            )
        batch = x.shape[0]
        pad = self.padding
        # Putting the (small) input map's spatial axes first makes the patch tensor come out
        # location-major, as the batched product needs it. Transposing the (large) patch tensor
        # of F.unfold instead costs several times more on a CPU.
        maps = F.pad(x.view(batch, *self.in_shape), (pad, pad, pad, pad)).permute(2, 3, 0, 1)  # (H, W, batch, C)
        patches = maps.unfold(0, self.kernel, self.stride).unfold(1, self.kernel, self.stride)
        # (out_h, out_w, batch, C, kernel_y, kernel_x) -> (locations, batch, fan_in), fan_in ordered (C, y, x)
        patches = patches.reshape(self.weight.shape[0], batch, self.weight.shape[1])
        out = torch.baddbmm(self.bias.unsqueeze(1), patches, self.weight)  # (locations, batch, out_channels)
        return out.permute(1, 2, 0).reshape(batch, self.out_features)  # channel-major flat map

    def extra_repr(self) -> str:
        return f"in_shape={self.in_shape}, out_shape={self.out_shape}, kernel={self.kernel}, stride={self.stride}"


class TwoSourceInput(nn.Module):
    """Sum of a bottom-up and a top-down module, applied to one concatenated input.

    The input is `[x_below, x_above]` along the features, so a `LocalBlock` can detach and
    batch it like any other input. Used by the recurrent network, where each layer sees the
    layer below and the layer above.

    Args:
        bottom_up: maps `(batch, below_features)` to `(batch, units)`.
        top_down: maps `(batch, above_features)` to `(batch, units)`.
        below_features: width of `x_below`, where the input is split.
    """

    def __init__(self, bottom_up: nn.Module, top_down: nn.Module, below_features: int) -> None:
        super().__init__()
        self.bottom_up = bottom_up
        self.top_down = top_down
        self.below_features = int(below_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map `(batch, below_features + above_features)` to `(batch, units)`."""
        below, above = x[:, : self.below_features], x[:, self.below_features :]
        return self.bottom_up(below) + self.top_down(above)


class FFLocal(LocalBlock):
    """A locally connected FF block: `ReLU(LocallyConnected2d(x))` with goodness over all its units.

    Args:
        in_shape: `(channels, height, width)` of the input map.
        out_channels, kernel, stride, padding, init: see `LocallyConnected2d`.
        **block_kwargs: passed to `LocalBlock`.

    Raises:
        UsageError: see `LocallyConnected2d` and `LocalBlock`.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        out_channels: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        init: str = "hinton",
        **block_kwargs,
    ) -> None:
        module = LocallyConnected2d(in_shape, out_channels, kernel, stride, padding, init)
        super().__init__(module, module.out_features, **block_kwargs)
        self.out_shape = module.out_shape
