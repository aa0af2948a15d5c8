"""Training loops with early stopping: layer by layer (greedy) and all layers together (joint).

A method plugs in through a few calls (see `LayerwiseMethod` and `JointMethod`); the loops own
the epochs, the validation checks, early stopping with the best state restored, the progress
bar, the per-epoch records and the memory meter.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch
from torch import nn
from tqdm import tqdm

from ...errors import TrainingError
from ...training.early_stopping import EarlyStopping
from .layers import GraphConfig
from .memory import PeakMemoryMeter

EpochCallback = Callable[[dict], None]


@dataclass
class DepthResult:
    """Scores of a network cut after `depth` layers, in percent (accuracy or ROC-AUC).

    Attributes:
        depth: number of layers used for prediction.
        valid: validation score at the restored best state.
        test: test score at the same state.
        epochs: training steps taken by the last layer (by the whole model for joint training).
        best_epoch: the step whose state was restored.
        peak_memory_bytes: peak of `PeakMemoryMeter` while training layers 1 to `depth`.
    """

    depth: int
    valid: float
    test: float
    epochs: int
    best_epoch: int
    peak_memory_bytes: int


@dataclass
class FitResult:
    """Per-depth results of one training run and its wall time in seconds."""

    depths: list[DepthResult] = field(default_factory=list)
    train_time_s: float = 0.0


class LayerwiseMethod(Protocol):
    """What `fit_layerwise` needs from a greedy method."""

    layers: nn.ModuleList

    def start_layer(self, index: int) -> None:
        """Append layer `index` to `layers`, with its optimizer."""

    def train_step(self, index: int) -> torch.Tensor:
        """Take one training step of layer `index` and return its detached loss."""

    def scores(self, index: int, with_test: bool = True) -> dict[str, float]:
        """Return the `valid` (and unless `with_test` is False, `test`) score of the network cut after layer `index`."""

    def finish_layer(self, index: int) -> None:
        """Freeze layer `index` and cache what the next layer needs."""

    def cached_bytes(self) -> int:
        """Bytes of tensors the method keeps between steps."""


class JointMethod(Protocol):
    """What `fit_joint` needs from a method that trains all its layers at every step."""

    module: nn.Module

    def train_step(self) -> torch.Tensor:
        """Take one training step of every layer and return the detached summed loss."""

    def scores(self, with_test: bool = True) -> dict[str, float]:
        """Return the `valid` (and unless `with_test` is False, `test`) score of the whole network."""

    def cached_bytes(self) -> int:
        """Bytes of tensors the method keeps between steps."""


def _check_finite(loss: torch.Tensor, where: str, epoch: int) -> None:
    if not bool(torch.isfinite(loss)):
        raise TrainingError(
            f"the loss of {where} became {loss.item()} at epoch {epoch}; lower the learning rate (lr)"
        )


def _patience_in_checks(config: GraphConfig) -> int:
    return max(1, math.ceil(config.patience / config.eval_every))


def _epochs(config: GraphConfig, desc: str, progress: bool):
    return tqdm(range(1, config.max_epochs + 1), desc=desc, unit="epoch", disable=not progress,
                leave=False, dynamic_ncols=True)


def fit_layerwise(
    method: LayerwiseMethod,
    num_layers: int,
    config: GraphConfig,
    progress: bool = False,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Train layers one after another, each with early stopping on its validation score.

    Layer k trains on the frozen output of layers 1 to k-1 until its validation score (of the
    network cut after layer k) has not improved for `config.patience` epochs; its best state is
    then restored and it is frozen. The result has one row per depth 1 to `num_layers`.

    Raises:
        TrainingError: a loss became NaN or infinite.
    """
    result = FitResult()
    meter = PeakMemoryMeter()
    start = time.perf_counter()
    for index in range(num_layers):
        method.start_layer(index)
        layer = method.layers[index]
        stopper = EarlyStopping(_patience_in_checks(config))
        epoch = 0
        bar = _epochs(config, f"layer {index + 1}/{num_layers}", progress)
        for epoch in bar:
            layer.train()
            loss = meter.measure(lambda: method.train_step(index), [layer], method.cached_bytes())
            _check_finite(loss, f"layer {index + 1}", epoch)
            if epoch % config.eval_every:
                continue
            layer.eval()
            scores = method.scores(index, with_test=False)
            stop = stopper.step(scores["valid"], layer, epoch)
            bar.set_postfix(loss=f"{loss.item():.4f}", valid=f"{scores['valid']:.2f}")
            if on_epoch is not None:
                on_epoch({"layer": index + 1, "epoch": epoch, "loss": loss.item(), "valid": scores["valid"]})
            if stop:
                break
        bar.close()
        stopper.restore(layer)
        layer.eval()
        final = method.scores(index)
        method.finish_layer(index)
        result.depths.append(DepthResult(
            depth=index + 1, valid=final["valid"], test=final["test"], epochs=epoch,
            best_epoch=stopper.best_step or epoch, peak_memory_bytes=meter.peak_bytes,
        ))
    result.train_time_s = time.perf_counter() - start
    return result


def fit_joint(
    method: JointMethod,
    num_layers: int,
    config: GraphConfig,
    progress: bool = False,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Train all layers at every step, with early stopping on the whole network's validation score.

    Returns one row, for depth `num_layers`.

    Raises:
        TrainingError: a loss became NaN or infinite.
    """
    meter = PeakMemoryMeter()
    stopper = EarlyStopping(_patience_in_checks(config))
    start = time.perf_counter()
    epoch = 0
    bar = _epochs(config, f"{num_layers} layers", progress)
    for epoch in bar:
        method.module.train()
        loss = meter.measure(method.train_step, [method.module], method.cached_bytes())
        _check_finite(loss, "the network", epoch)
        if epoch % config.eval_every:
            continue
        method.module.eval()
        scores = method.scores(with_test=False)
        stop = stopper.step(scores["valid"], method.module, epoch)
        bar.set_postfix(loss=f"{loss.item():.4f}", valid=f"{scores['valid']:.2f}")
        if on_epoch is not None:
            on_epoch({"layer": 0, "epoch": epoch, "loss": loss.item(), "valid": scores["valid"]})
        if stop:
            break
    bar.close()
    stopper.restore(method.module)
    method.module.eval()
    final = method.scores()
    result = FitResult(train_time_s=time.perf_counter() - start)
    result.depths.append(DepthResult(
        depth=num_layers, valid=final["valid"], test=final["test"], epochs=epoch,
        best_epoch=stopper.best_step or epoch, peak_memory_bytes=meter.peak_bytes,
    ))
    return result
