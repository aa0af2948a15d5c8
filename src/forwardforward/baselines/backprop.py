"""The backprop baseline: the bottom-up layers of an FF recipe plus a softmax layer, trained end to end.

`trainer = "backprop"` (in a recipe, or `--set trainer=backprop`) swaps the FF trainer for this
one. The hidden layers are those of `[model]` (fully connected widths or locally connected
layers, built with the same initialisation), with ReLU between them and a linear output layer
of one logit per class. The input is RMS-normalised like the FF input but carries no label,
and the recurrent network's top-down connections are left out: the baseline is the
feed-forward network that backprop would train. It logs `train/error_softmax` and
`{split}/error_softmax` like the FF read-out, and reuses the FF trainer's epoch loop,
learning-rate schedule, checkpoints and resume.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..architectures import local_modules
from ..config import ModelConfig, RunConfig
from ..data.augment import jitter_images
from ..errors import UsageError
from ..normalization import rms_normalize
from ..optim import build_optimizer
from ..training.checkpoint import CheckpointParts
from ..training.trainer import Trainer, TrainingData


class BackpropNetwork(nn.Module):
    """Hidden layers with ReLU and a linear softmax output, for end-to-end training.

    Args:
        hidden: the hidden modules, bottom first, each `(batch, in) -> (batch, units)`.
        units: width of the last hidden layer.
        num_classes: number of logits.

    Raises:
        UsageError: no hidden module.
    """

    def __init__(self, hidden: list[nn.Module], units: int, num_classes: int) -> None:
        super().__init__()
        if not hidden:
            raise UsageError("a backprop baseline needs at least one hidden layer")
        self.hidden = nn.ModuleList(hidden)
        self.output = nn.Linear(units, num_classes)

    @classmethod
    def from_config(cls, model: ModelConfig, image_shape: tuple[int, int, int], num_classes: int) -> "BackpropNetwork":
        """Build the bottom-up layers that `[model]` describes, initialised as the FF blocks are.

        Raises:
            UsageError: a bad width or locally connected layer.
        """
        hidden: list[nn.Module] = []
        if model.kind == "local":
            hidden.extend(local_modules(model, image_shape))
            units = hidden[-1].out_features
        else:
            width = math.prod(image_shape)
            for units in model.hidden:
                linear = nn.Linear(width, units)
                if model.init == "hinton":
                    with torch.no_grad():
                        linear.weight.normal_(0.0, 1.0 / math.sqrt(width))
                        linear.bias.zero_()
                hidden.append(linear)
                width = units
            units = width
        return cls(hidden, units, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map `(batch, in_features)` images to `(batch, num_classes)` logits.

        Gradients flow through every layer: nothing is detached here.
        """
        h = rms_normalize(images)
        for module in self.hidden:
            h = torch.relu(module(h))
        return self.output(h)


class BackpropTrainer(Trainer):
    """Trains a `BackpropNetwork` with cross-entropy in the FF trainer's epoch loop.

    Args:
        config: the run's configuration; `[baseline.optimizer]` sets the optimizer.
        data: the splits, already on `device`.
        device: where the model and data live.

    Raises:
        UsageError: the greedy schedule, which has no meaning for end-to-end training.
    """

    def __init__(self, config: RunConfig, data: TrainingData, device: torch.device) -> None:
        if config.train.schedule != "simultaneous":
            raise UsageError('the backprop baseline trains all layers together; set train.schedule = "simultaneous"')
        self.config = config
        self.data = data
        self.device = device
        self.unsupervised = False
        torch.manual_seed(config.train.seed)  # the weights' initialisation
        self.network = BackpropNetwork.from_config(config.model, data.shape, data.num_classes).to(device)
        self.optimizer = build_optimizer(self.network, config.baseline.optimizer)
        self.readout = None
        self.histograms = None  # no goodness to bin: backprop has no layer-local objective
        self.shuffle_generator = torch.Generator().manual_seed(config.train.seed + 1)
        self.jitter_generator = torch.Generator(device=device).manual_seed(config.train.seed + 3)
        self.epoch = 0

    @property
    def total_epochs(self) -> int:
        """All epochs of the run."""
        return self.config.train.epochs

    def scheduled_optimizers(self) -> list[tuple[torch.optim.Optimizer, float]]:
        """The one optimizer of the whole network, with its base learning rate."""
        return [(self.optimizer, self.config.baseline.optimizer.lr)]

    def train_batch(self, images: torch.Tensor, labels: torch.Tensor, active: int | None) -> torch.Tensor:
        """Take one step on the batch-mean cross-entropy.

        Returns:
            `(2,)` detached values: the loss and the number of errors before the step.
        """
        if self.config.data.jitter:
            images = jitter_images(images, self.data.shape, self.config.data.jitter, self.jitter_generator)
        logits = self.network(images)
        loss = F.cross_entropy(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return torch.stack([loss.detach(), (logits.detach().argmax(dim=1) != labels).sum().float()])

    def progress_loss(self, sums: torch.Tensor, batches: int) -> float:
        """Mean cross-entropy over the first `batches` batches."""
        return (sums[0] / batches).item()

    def epoch_metrics(self, sums: torch.Tensor, num_batches: int, n: int, active: int | None) -> dict:
        """Mean training loss and the training error in percent (each counted before its step)."""
        return {"train/loss": (sums[0] / num_batches).item(), "train/error_softmax": 100.0 * sums[1].item() / n}

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Error rates in percent on every evaluation split, with keys like `test/error_softmax`."""
        was_training = self.network.training
        self.network.eval()
        result = {}
        batch_size = self.config.train.eval_batch_size
        for name, (images, labels) in self.data.eval_splits.items():
            wrong = 0
            for start in range(0, images.shape[0], batch_size):
                logits = self.network(images[start : start + batch_size])
                wrong += int((logits.argmax(dim=1) != labels[start : start + batch_size]).sum())
            result[f"{name}/error_softmax"] = 100.0 * wrong / max(images.shape[0], 1)
        self.network.train(was_training)
        return result

    def checkpoint_parts(self) -> CheckpointParts:
        """Return the weights, optimizer state and random generators by checkpoint key."""
        return CheckpointParts(
            parts={"network": self.network, "optimizer": self.optimizer},
            generators={"shuffle_rng": self.shuffle_generator, "jitter_rng": self.jitter_generator},
        )
