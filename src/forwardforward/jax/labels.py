"""Label overlay and negative labels as pure JAX functions with explicit random keys.

The same conventions as `forwardforward.labels` and `forwardforward.negatives`: the first
`num_classes` input features carry a one-hot label of height `strength`, the neutral label puts
`strength / num_classes` in each, and a negative label is never the true one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _check_room(images: jax.Array, num_classes: int) -> None:
    if images.ndim != 2:
        raise ValueError(
            f"label overlay expects flattened images of shape (batch, features), got shape "
            f"{images.shape}; flatten them first"
        )
    if images.shape[1] < num_classes:
        raise ValueError(
            f"cannot overlay {num_classes} classes on {images.shape[1]} features; "
            "the input needs at least one feature per class"
        )


def overlay_labels(
    images: jax.Array, labels: jax.Array, num_classes: int, strength: float = 1.0
) -> jax.Array:
    """Return `images` whose first `num_classes` features hold the one-hot label.

    Args:
        images: `(batch, features)`.
        labels: `(batch,)` integer labels in `[0, num_classes)`.
        num_classes: number of classes, and of overwritten features.
        strength: value written at the label's position; the other label features become 0.

    Returns:
        `(batch, features)` new array.

    Raises:
        ValueError: `images` is not 2-D or has fewer features than classes, or the batch
            sizes differ.
    """
    _check_room(images, num_classes)
    if labels.shape != (images.shape[0],):
        raise ValueError(
            f"labels must have shape ({images.shape[0]},) to match the images, got {labels.shape}"
        )
    one_hot = jax.nn.one_hot(labels, num_classes, dtype=images.dtype) * strength
    return jnp.concatenate([one_hot, images[:, num_classes:]], axis=1)  # (batch, features)


def overlay_neutral(images: jax.Array, num_classes: int, strength: float = 1.0) -> jax.Array:
    """Return `(batch, features)` images carrying the neutral label, `strength / num_classes` each.

    Raises:
        ValueError: as `overlay_labels`.
    """
    _check_room(images, num_classes)
    return images.at[:, :num_classes].set(strength / num_classes)


def random_wrong_labels(key: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
    """Draw, for each sample, a label uniformly from the `num_classes - 1` wrong ones.

    Args:
        key: a JAX random key.
        labels: `(batch,)` true labels.
        num_classes: at least 2.

    Returns:
        `(batch,)` int32 labels, each different from the true label.

    Raises:
        ValueError: `num_classes` is below 2.
    """
    if num_classes < 2:
        raise ValueError(f"wrong labels need at least 2 classes, got num_classes={num_classes}")
    offset = jax.random.randint(key, labels.shape, 1, num_classes)
    return (labels + offset) % num_classes


def hard_wrong_labels(
    key: jax.Array, scores: jax.Array, labels: jax.Array, temperature: float = 1.0
) -> jax.Array:
    """Sample wrong labels in proportion to softmax(scores / temperature) over the wrong classes.

    As in Hinton's Matlab code, a label the network confuses with the truth is drawn more
    often. Rows whose scores are not finite fall back to a uniform draw over the wrong labels.

    Args:
        key: a JAX random key.
        scores: `(batch, num_classes)` logits or goodness per class.
        labels: `(batch,)` true labels.
        temperature: divides the scores before the softmax; must be positive.

    Returns:
        `(batch,)` int32 labels, never equal to the true label.

    Raises:
        ValueError: shapes disagree, fewer than 2 classes, or a non-positive temperature.
    """
    if scores.ndim != 2 or scores.shape[0] != labels.shape[0]:
        raise ValueError(
            f"scores must be (batch, num_classes) with batch {labels.shape[0]}, got {scores.shape}"
        )
    if scores.shape[1] < 2:
        raise ValueError(f"wrong labels need at least 2 classes, got {scores.shape[1]}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    true_class = jax.nn.one_hot(labels, scores.shape[1], dtype=bool)
    logits = jax.lax.stop_gradient(scores).astype(jnp.float32) / temperature
    logits = jnp.where(true_class, -jnp.inf, logits)

    # A row with a NaN or an infinite wrong-class score gets equal weights on the wrong labels.
    usable = jnp.all(jnp.isfinite(logits) | true_class, axis=1, keepdims=True)
    logits = jnp.where(usable, logits, jnp.where(true_class, -jnp.inf, 0.0))
    return jax.random.categorical(key, logits, axis=1)
