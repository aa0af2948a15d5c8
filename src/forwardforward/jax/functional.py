"""Goodness, layer-local objectives and normalisation as pure JAX functions.

These mirror `forwardforward.goodness`, `forwardforward.objectives` and
`forwardforward.normalization` formula for formula, so that a recipe means the same thing in
both backends. Shapes use the same notation: activities `(batch, features)`, goodness `(batch,)`.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from ..registry import lookup

_EPS = 1e-12

# d(h^2)/dh = 2h, but Hinton's Matlab code uses h as the gradient of the goodness. Its peer
# normalisation term is sized for that, so the term is doubled, as in `forwardforward.layers`.
PEER_GRADIENT_SCALE = 2.0


def sum_of_squares(activity: jax.Array) -> jax.Array:
    """Compute G = sum_j h_j^2 for each sample: `(batch, features)` to `(batch,)` (Hinton 2022)."""
    return jnp.sum(jnp.square(activity), axis=-1)


def mean_of_squares(activity: jax.Array) -> jax.Array:
    """Compute G = (1 / features) sum_j h_j^2 for each sample: `(batch, features)` to `(batch,)`."""
    return jnp.mean(jnp.square(activity), axis=-1)


GOODNESS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sum_of_squares": sum_of_squares,
    "mean_of_squares": mean_of_squares,
}


def get_goodness(name: str) -> Callable[[jax.Array], jax.Array]:
    """Look up a goodness function by its registered name.

    Raises:
        UsageError: `name` is not registered.
    """
    return lookup(GOODNESS, "goodness", name)


def threshold_loss(goodness_pos: jax.Array, goodness_neg: jax.Array, threshold: float) -> jax.Array:
    """Compute Hinton's FF loss: mean of softplus(theta - G_pos) + softplus(G_neg - theta).

    This is the binary cross-entropy with logits `G - theta`, positives labelled 1 and negatives
    labelled 0 (Hinton 2022). `jax.nn.softplus` is evaluated in a stable form.

    Args:
        goodness_pos: `(batch,)` goodness of positive samples.
        goodness_neg: `(batch_neg,)` goodness of negative samples.
        threshold: theta, in the units of the goodness.

    Returns:
        Scalar: mean positive term plus mean negative term.
    """
    return jnp.mean(jax.nn.softplus(threshold - goodness_pos)) + jnp.mean(
        jax.nn.softplus(goodness_neg - threshold)
    )


def symba_loss(goodness_pos: jax.Array, goodness_neg: jax.Array, alpha: float = 4.0) -> jax.Array:
    """Compute the SymBa loss: mean of softplus(-alpha (G_pos - G_neg)).

    From Lee and Song (2023), "SymBa: A Symmetric Balanced Forward-Forward Algorithm"; each
    positive is compared with the negative at the same batch index.

    Args:
        goodness_pos: `(batch,)` goodness of positive samples.
        goodness_neg: `(batch,)` goodness of their negative counterparts.
        alpha: scale of the goodness difference.

    Returns:
        Scalar loss.

    Raises:
        ValueError: the two batches differ in shape.
    """
    if goodness_pos.shape != goodness_neg.shape:
        raise ValueError(
            f"SymBa pairs positives with negatives, but got shapes {goodness_pos.shape} and "
            f"{goodness_neg.shape}; pass one negative per positive"
        )
    return jnp.mean(jax.nn.softplus(-alpha * (goodness_pos - goodness_neg)))


def rms_normalize(x: jax.Array, eps: float = _EPS) -> jax.Array:
    """Divide each row of `(batch, features)` by its root mean square, with no mean subtraction.

    The next layer sees only the direction of the activity vector (Hinton's length
    normalisation). `eps` keeps an all-zero row at zero instead of NaN.
    """
    return x / (jnp.sqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True)) + eps)


def peer_update(running_mean: jax.Array, activity: jax.Array, momentum: float) -> jax.Array:
    """Fold the batch mean of `(batch, units)` positive activities into the `(units,)` average.

    Returns `momentum * running_mean + (1 - momentum) * batch mean`, with no gradient.
    """
    batch_mean = jnp.mean(jax.lax.stop_gradient(activity), axis=0)
    return running_mean * momentum + batch_mean * (1.0 - momentum)


def peer_loss(
    pre_activation: jax.Array,
    running_mean: jax.Array,
    strength: float,
    gradient_scale: float = PEER_GRADIENT_SCALE,
) -> jax.Array:
    """Return a scalar whose gradient applies the peer-normalisation pull to pre-activations.

    Its gradient with respect to `pre_activation[i, j]` of shape `(batch, units)` is
    `-gradient_scale * strength * (mean_k m_k - m_j) / batch`, the term that Hinton's Matlab
    code adds for every unit, active or not. The value itself carries no meaning.
    """
    pull = jax.lax.stop_gradient((jnp.mean(running_mean) - running_mean) * strength)
    return -jnp.sum(pre_activation * pull) * (gradient_scale / pre_activation.shape[0])
