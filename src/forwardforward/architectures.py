"""Networks built from a model configuration: fully connected or locally connected FF stacks."""

from __future__ import annotations

import math

from .config import ModelConfig
from .errors import UsageError
from .layers import FFLocal, LocalBlock
from .network import FFNetwork


def block_settings(model: ModelConfig) -> dict:
    """Return the `LocalBlock` keyword arguments that a model configuration sets."""
    return {
        "goodness": model.goodness,
        "threshold": model.threshold,
        "objective": model.objective,
        "symba_alpha": model.symba_alpha,
        "peer_strength": model.peer_strength,
        "peer_momentum": model.peer_momentum,
    }


def local_blocks(model: ModelConfig, image_shape: tuple[int, int, int]) -> list[LocalBlock]:
    """Build the locally connected FF blocks of `model.local` on maps of `image_shape`.

    Args:
        model: a configuration with `kind = "local"`.
        image_shape: `(channels, height, width)` of the input images.

    Returns:
        One `FFLocal` block per `[[model.local]]` table, bottom first.

    Raises:
        UsageError: a layer that does not fit its input map.
    """
    blocks: list[LocalBlock] = []
    shape = tuple(image_shape)
    for index, layer in enumerate(model.local):
        try:
            block = FFLocal(
                shape, layer.channels, layer.kernel, layer.stride, layer.padding, init=model.init,
                **block_settings(model),
            )
        except UsageError as exc:
            raise UsageError(f"model.local[{index}]: {exc}") from None
        blocks.append(block)
        shape = block.out_shape
    return blocks


def build_ff_network(
    model: ModelConfig, image_shape: tuple[int, int, int], num_classes: int
) -> FFNetwork:
    """Build the feed-forward FF network that a model configuration describes.

    Args:
        model: the `[model]` settings.
        image_shape: `(channels, height, width)` of one input image.
        num_classes: labels tried by goodness prediction.

    Raises:
        UsageError: a bad width, layer or block setting.
    """
    if model.kind == "local":
        blocks = local_blocks(model, image_shape)
        return FFNetwork(blocks, num_classes=num_classes, label_strength=model.label_strength)
    return FFNetwork.fully_connected(
        math.prod(image_shape),
        model.hidden,
        num_classes=num_classes,
        label_strength=model.label_strength,
        init=model.init,
        **block_settings(model),
    )
