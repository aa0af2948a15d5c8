"""Local blocks: a module, an activation, a goodness, an objective and its own optimizer.

A block trains on inputs that are detached from whatever produced them, so its loss never
sends a gradient into a lower block. Any `nn.Module` that maps `(batch, in_features)` to
`(batch, units)` can be wrapped; `FFLinear` is the fully connected block of Hinton (2022).
"""

from __future__ import annotations

import math

import torch
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
        self, x_pos: torch.Tensor, x_neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Compute the block's loss on one positive and one negative batch.

        Both batches go through the module as one concatenated batch, so one matrix product
        serves both passes. The inputs are detached here: this line is what keeps the loss
        from reaching any block below.

        Args:
            x_pos: `(batch, in_features)` positive inputs.
            x_neg: `(batch_neg, in_features)` negative inputs.

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
        self, x_pos: torch.Tensor, x_neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Take one optimizer step on the layer-local loss.

        Returns:
            `(h_pos, h_neg, metrics)` as in `local_loss`; the activities were computed with
            the weights before this step.

        Raises:
            RuntimeError: `configure_optimizer` was not called first.
        """
        if self.optimizer is None:
            raise RuntimeError("call configure_optimizer() before train_step()")
        loss_fn = self.local_loss if self._compiled_loss is None else self._compiled_loss
        total, h_pos, h_neg, metrics = loss_fn(x_pos, x_neg)
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
