"""End-to-end cross-entropy training of a stack of modules, as the baseline of an FF network.

`BackpropTrainer` has the interface of the core `Trainer` (`epoch`, `total_epochs`,
`train_epoch`, `evaluate`, `state_dict`, `load_state_dict`), so `forwardforward.training.train`
runs it in a run directory with the same metrics file, checkpoints and resume. Its metric
keys match the FF runs' where the meaning is the same: `test/error_softmax` is the error of the
network's softmax output.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig
from ..data.augment import jitter_images
from ..errors import UsageError
from ..optim import OptimizerConfig, build_optimizer
from ..training.checkpoint import CheckpointParts, ResumableTrainer
from ..training.loop import epoch_order, run_epoch
from ..training.schedules import lr_gain, set_gain
from ..training.trainer import TrainingData


class BackpropClassifier(nn.Module):
    """A stack of modules followed by a linear layer to class logits.

    Args:
        body: modules applied in order to `(batch, *input_shape)` inputs.
        input_shape: shape of one input without the batch axis, such as `(3, 32, 32)`.
        num_classes: number of logits.

    Raises:
        UsageError: an empty body, or fewer than 2 classes.
    """

    def __init__(self, body: Sequence[nn.Module], input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        if len(body) == 0:
            raise UsageError("a backprop baseline needs at least one module in its body")
        if num_classes < 2:
            raise UsageError(f"num_classes must be at least 2, got {num_classes}")
        self.input_shape = tuple(input_shape)
        self.body = nn.Sequential(*body)
        with torch.no_grad():
            features = self.body(torch.zeros(1, *self.input_shape)).flatten(1).shape[1]
        self.head = nn.Linear(features, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map `(batch, features)` or `(batch, *input_shape)` images to `(batch, num_classes)` logits."""
        x = images.view(images.shape[0], *self.input_shape)
        return self.head(self.body(x).flatten(1))


class BackpropTrainer(ResumableTrainer):
    """Trains a `BackpropClassifier` with cross-entropy and one optimizer over all its parameters.

    Args:
        model: the classifier, already on `device`.
        data: the splits, on `device`.
        optimizer: optimizer settings; the learning rate follows `train.lr_schedule`.
        train: epochs, batch size, schedule, seed and evaluation settings.
        device: where model and data live.
        jitter: shift each training image by up to this many pixels in each direction, drawn
            anew for every batch (`data.jitter`); 0 disables it.
        image_shape: `(C, H, W)` of one image, needed when `jitter` is positive.

    Raises:
        UsageError: a greedy schedule, which has no meaning for end-to-end training, or a
            positive `jitter` without `image_shape`.
    """

    def __init__(
        self,
        model: BackpropClassifier,
        data: TrainingData,
        optimizer: OptimizerConfig,
        train: TrainConfig,
        device: torch.device,
        jitter: int = 0,
        image_shape: tuple[int, int, int] | None = None,
    ) -> None:
        if train.schedule != "simultaneous":
            raise UsageError(
                f"train.schedule = {train.schedule!r} does not apply to a backprop baseline; use 'simultaneous'"
            )
        self.model = model
        self.data = data
        self.train_config = train
        self.optimizer_config = optimizer
        self.device = device
        self.optimizer = build_optimizer(model, optimizer)
        if jitter > 0 and image_shape is None:
            raise UsageError(f"data.jitter = {jitter} needs images with a (C, H, W) shape; set data.jitter = 0")
        self.jitter = jitter
        self.image_shape = image_shape
        self.shuffle_generator = torch.Generator().manual_seed(train.seed + 1)
        self.jitter_generator = torch.Generator(device=device).manual_seed(train.seed + 3)
        self.epoch = 0

    @property
    def total_epochs(self) -> int:
        """Number of epochs of the run."""
        return self.train_config.epochs

    def _step(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.jitter:
            images = jitter_images(images, self.image_shape, self.jitter, self.jitter_generator)
        logits = self.model(images)
        loss = F.cross_entropy(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        wrong = (logits.detach().argmax(dim=1) != labels).sum()
        return torch.stack([loss.detach(), wrong.to(loss.dtype)])

    def train_epoch(self, progress: bool = True) -> dict:
        """Run the next epoch and return `train/loss`, `train/error_softmax` and timings.

        Raises:
            TrainingError: the loss became NaN or infinite.
        """
        epoch = self.epoch + 1
        gain = lr_gain(self.train_config.lr_schedule, epoch, self.total_epochs)
        set_gain(self.optimizer, self.optimizer_config.lr, gain)
        images, labels = self.data.train_images, self.data.train_labels
        order = epoch_order(images.shape[0], self.train_config.shuffle, self.shuffle_generator, self.device)
        self.model.train()
        sums, num_batches, elapsed = run_epoch(
            self._step, images, labels, self.train_config.batch_size, order, epoch, self.total_epochs, progress
        )
        self.epoch = epoch
        n = images.shape[0]
        return {
            "epoch": epoch,
            "lr_gain": gain,
            "train/loss": sums[0].item() / num_batches,
            "train/error_softmax": 100.0 * sums[1].item() / n,
            "epoch_time_s": elapsed,
            "samples_per_s": n / elapsed,
        }

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Error rates in percent on every evaluation split, with keys like `test/error_softmax`."""
        self.model.eval()
        result = {}
        for name, (images, labels) in self.data.eval_splits.items():
            wrong = 0
            for start in range(0, images.shape[0], self.train_config.eval_batch_size):
                x = images[start : start + self.train_config.eval_batch_size]
                y = labels[start : start + self.train_config.eval_batch_size]
                wrong += int((self.model(x).argmax(dim=1) != y).sum())
            result[f"{name}/error_softmax"] = 100.0 * wrong / max(images.shape[0], 1)
        self.model.train()
        return result

    def checkpoint_parts(self) -> CheckpointParts:
        """Return the weights, optimizer state and random generators by checkpoint key."""
        return CheckpointParts(
            parts={"model": self.model, "optimizer": self.optimizer},
            generators={"shuffle_rng": self.shuffle_generator, "jitter_rng": self.jitter_generator},
            optional_generators=("jitter_rng",),  # checkpoints written before jitter support have none
        )
