"""Networks built from a model configuration: fully connected or locally connected FF stacks."""

from __future__ import annotations

import math

from .config import ModelConfig
from .errors import UsageError
from .layers import LocalBlock, LocallyConnected2d
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


def local_modules(model: ModelConfig, image_shape: tuple[int, int, int]) -> list[LocallyConnected2d]:
    """Build the locally connected layers of `model.local`, bottom first, on maps of `image_shape`.

    Raises:
        UsageError: a layer that does not fit its input map; the message names the layer.
    """
    modules = []
    shape = tuple(image_shape)
    for index, layer in enumerate(model.local):
        try:
            module = LocallyConnected2d(shape, layer.channels, layer.kernel, layer.stride, layer.padding, model.init)
        except UsageError as exc:
            raise UsageError(f"model.local[{index}]: {exc}") from None
        modules.append(module)
        shape = module.out_shape
    return modules


def local_blocks(model: ModelConfig, image_shape: tuple[int, int, int]) -> list[LocalBlock]:
    """Wrap each locally connected layer of `model.local` in a `LocalBlock` with the model's objective.

    Raises:
        UsageError: see `local_modules`.
    """
    return [
        LocalBlock(module, module.out_features, **block_settings(model))
        for module in local_modules(model, image_shape)
    ]


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
