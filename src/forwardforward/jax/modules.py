"""Flax modules of the FF core: the fully connected local block, the network and the read-out.

The parameters mirror the PyTorch modules. A block's `Dense` kernel is `(in_features, units)`,
the transpose of `nn.Linear.weight`; `forwardforward.jax.convert` moves weights between them.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..errors import UsageError
from .functional import rms_normalize

INITS = ("hinton", "torch")


def _hinton_kernel(key: jax.Array, shape: tuple[int, int], dtype=jnp.float32) -> jax.Array:
    # N(0, 1 / fan_in) weights, as Hinton's Matlab code draws them.
    return jax.random.normal(key, shape, dtype) / math.sqrt(shape[0])


def _torch_uniform(fan_in: int):
    # nn.Linear's default: kernel and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    bound = 1.0 / math.sqrt(fan_in)

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class FFDense(nn.Module):
    """A fully connected FF block: pre-activations `x W + b` and activities `ReLU(x W + b)`.

    Attributes:
        units: number of hidden units.
        weight_init: `hinton` (N(0, 1/in_features) kernel, zero bias) or `torch`
            (nn.Linear's uniform default). Named so because `init` is a Flax method.
    """

    units: int
    weight_init: str = "hinton"

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Map `(batch, in_features)` to `(z, h)`: pre-activations and activities, `(batch, units)`.

        Raises:
            UsageError: an unknown `weight_init` or a non-positive width.
        """
        if self.units <= 0:
            raise UsageError(f"a block needs at least one unit, got units={self.units}")
        if self.weight_init not in INITS:
            raise UsageError(f"unknown init {self.weight_init!r}; choose 'hinton' or 'torch'")
        fan_in = x.shape[-1]
        if self.weight_init == "hinton":
            dense = nn.Dense(self.units, kernel_init=_hinton_kernel, bias_init=nn.initializers.zeros)
        else:
            dense = nn.Dense(self.units, kernel_init=_torch_uniform(fan_in), bias_init=_torch_uniform(fan_in))
        z = dense(x)
        return z, jax.nn.relu(z)


class FFNetwork(nn.Module):
    """FF blocks in sequence, each fed the RMS-normalised activity of the one below.

    Gradients stop at every block's input, so the sum of the blocks' losses has, for each
    block's parameters, the gradient of that block's own loss alone.

    Attributes:
        hidden: widths of the blocks, bottom first.
        weight_init: initialisation of every block, see `FFDense`.
        normalize_input: RMS-normalise the input before the first block.
    """

    hidden: Sequence[int]
    weight_init: str = "hinton"
    normalize_input: bool = True

    def setup(self) -> None:
        if not self.hidden or any(int(w) <= 0 for w in self.hidden):
            raise UsageError(f"hidden widths must be a non-empty list of positive integers, got {list(self.hidden)}")
        self.blocks = [FFDense(int(units), self.weight_init, name=f"block{i}") for i, units in enumerate(self.hidden)]

    def __call__(self, x: jax.Array) -> list[tuple[jax.Array, jax.Array]]:
        """Run every block on `(batch, in_features)` inputs that already carry their label.

        Returns:
            One `(z, h)` pair per block, each `(batch, units_l)`: pre-activations and
            activities before normalisation.
        """
        h = rms_normalize(x) if self.normalize_input else x
        out = []
        for block in self.blocks:
            # stop_gradient here is what makes training layer-local: no loss above this line
            # reaches the blocks below.
            z, a = block(jax.lax.stop_gradient(h))
            out.append((z, a))
            h = rms_normalize(a)
        return out


class LinearReadout(nn.Module):
    """A linear softmax on the RMS-normalised activities of blocks `skip_first` and above.

    Its kernel (and bias, if any) starts at zero, as in Hinton's Matlab code. Gradients stop at
    its input, so it never changes the blocks.

    Attributes:
        num_classes: number of outputs.
        skip_first: bottom blocks whose activities are left out.
        bias: learn a bias per class.
    """

    num_classes: int
    skip_first: int = 1
    bias: bool = True

    @nn.compact
    def __call__(self, activities: Sequence[jax.Array]) -> jax.Array:
        """Return `(batch, num_classes)` logits from one `(batch, units_l)` activity per block.

        Raises:
            UsageError: `skip_first` leaves no block.
        """
        if not 0 <= self.skip_first < len(activities):
            raise UsageError(
                f"cannot skip {self.skip_first} of {len(activities)} blocks in the read-out; "
                f"use a value from 0 to {len(activities) - 1}"
            )
        used = [rms_normalize(jax.lax.stop_gradient(a)) for a in activities[self.skip_first :]]
        features = jnp.concatenate(used, axis=1)  # (batch, sum of used widths)
        dense = nn.Dense(
            self.num_classes, use_bias=self.bias,
            kernel_init=nn.initializers.zeros, bias_init=nn.initializers.zeros,
        )
        return dense(features)
