"""VFF-Net: Forward-Forward for fully connected and convolutional networks.

After Lee, Shin and Kim, "VFF-Net", Neural Networks 2025, which carries FF over to CNNs with
three ideas, each a switch here:

- label-wise noise labelling (`model.labels = "noise"`): each class adds a fixed noise
  pattern to the input instead of overwriting pixels (`forwardforward.labels.NoiseLabels`);
- a cosine-similarity contrastive loss (`model.cosine_weight > 0`) between the features of
  a positive and its negative counterpart at every spatial position, below a margin, added to
  the goodness loss (`forwardforward.objectives.cosine_contrastive_loss`);
- layer grouping (`model.grouping = true`): consecutive layers with equal channel counts form
  one local unit, trained end to end inside the unit, with the gradient stopped at its input.

With all three off the network is a plain FF network (FC or CNN) with one-hot pixel labels.
The paper's exact formulas were not available to us; docs/algorithms.md states ours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from ..baselines.end_to_end import BackpropClassifier, BackpropTrainer
from ..config import (
    DataConfig,
    NegativesConfig,
    ReadoutConfig,
    TrainConfig,
    check_choice,
    dataclass_from_dict,
)
from ..errors import UsageError
from ..goodness import default_threshold, get_goodness
from ..labels import ChannelLabels, LabelEmbedding, NoiseLabels, PixelLabels
from ..negatives import hard_wrong_labels, random_wrong_labels
from ..normalization import rms_normalize
from ..objectives import cosine_contrastive_loss, threshold_loss
from ..optim import OptimizerConfig, build_optimizer
from ..readout import LinearReadout, check_skip
from ..training.checkpoint import CheckpointParts, ResumableTrainer
from ..training.evaluation import evaluate_splits
from ..training.loop import epoch_order, run_epoch
from ..training.schedules import lr_gain, set_gain
from ..training.trainer import TrainingData

LABEL_MODES = ("noise", "channels", "pixels")
KINDS = ("fc", "conv")
METHODS = ("ff", "backprop")


@dataclass(frozen=True)
class VFFModelConfig:
    """Architecture and the three VFF-Net switches.

    Attributes:
        kind: `fc` (fully connected layers) or `conv` (3 x 3 style convolutions).
        hidden: widths (fc) or output channels (conv) of the layers, bottom first.
        kernel_size: convolution kernel size (odd; padding keeps the spatial size).
        pool_after: 1-based conv layers followed by 2 x 2 max pooling.
        labels: `noise` (label-wise noise patterns), `channels` (one extra input plane per
            class, conv only) or `pixels` (Hinton's one-hot overlay of the first values).
        noise_amplitude: scale of the noise pattern added to the input.
        noise_seed: seed of the noise patterns.
        label_strength: value of the one-hot pixel or of the label's plane.
        goodness: `sum_of_squares` or `mean_of_squares` over channels, averaged over positions.
        threshold: theta; None means the goodness's default for the layer's channel count.
        cosine_weight: weight of the cosine contrastive loss; 0 turns it off.
        cosine_margin: similarities below this margin cost nothing.
        grouping: group consecutive layers with equal widths into one local unit.
    """

    kind: str = "fc"
    hidden: tuple[int, ...] = (1000, 1000, 1000)
    kernel_size: int = 3
    pool_after: tuple[int, ...] = ()
    labels: str = "noise"
    noise_amplitude: float = 1.0
    noise_seed: int = 0
    label_strength: float = 1.0
    goodness: str = "sum_of_squares"
    threshold: float | None = None
    cosine_weight: float = 1.0
    cosine_margin: float = 0.0
    grouping: bool = True


@dataclass(frozen=True)
class VFFRunConfig:
    """Everything that defines one VFF-Net run (`variant = "vffnet"` in a recipe).

    Attributes:
        method: `ff` (layer-local training) or `backprop` (the same layers, without labels
            in the input, trained end to end with cross-entropy: the baseline).
        The other tables are those of the core `RunConfig`.
    """

    name: str = "custom"
    description: str = ""
    variant: str = "vffnet"
    method: str = "ff"
    data: DataConfig = field(default_factory=DataConfig)
    model: VFFModelConfig = field(default_factory=VFFModelConfig)
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(name="adam", lr=1e-3, weight_decay=0.0))
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    negatives: NegativesConfig = field(default_factory=NegativesConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _check_model(model: VFFModelConfig) -> None:
    choices = {"model.kind": (model.kind, KINDS), "model.labels": (model.labels, LABEL_MODES),
               "model.goodness": (model.goodness, ("sum_of_squares", "mean_of_squares"))}
    for key, (value, allowed) in choices.items():
        check_choice(key, value, allowed)
    if not model.hidden or any(w <= 0 for w in model.hidden):
        raise UsageError(f"model.hidden must list positive widths, got {list(model.hidden)}")
    if model.kernel_size <= 0 or model.kernel_size % 2 == 0:
        raise UsageError(f"model.kernel_size must be a positive odd number, got {model.kernel_size}")
    bad_pools = [p for p in model.pool_after if not 1 <= p <= len(model.hidden)]
    if bad_pools:
        raise UsageError(f"model.pool_after lists layers {bad_pools} outside 1..{len(model.hidden)}")
    if model.kind == "fc" and (model.pool_after or model.labels == "channels"):
        raise UsageError("model.pool_after and model.labels = 'channels' need model.kind = 'conv'")
    if model.noise_amplitude <= 0:
        raise UsageError(f"model.noise_amplitude must be positive, got {model.noise_amplitude}")
    if model.cosine_weight < 0:
        raise UsageError(f"model.cosine_weight must not be negative, got {model.cosine_weight}")
    if not -1.0 <= model.cosine_margin <= 1.0:
        raise UsageError(f"model.cosine_margin must lie in [-1, 1], got {model.cosine_margin}")


def config_from_dict(values: dict) -> VFFRunConfig:
    """Build a `VFFRunConfig` from nested dictionaries, as read from a recipe.

    Raises:
        UsageError: an unknown key, a value of the wrong type or out of range, or settings
            that do not fit together.
    """
    config = dataclass_from_dict(VFFRunConfig, values)
    if config.method not in METHODS:
        raise UsageError(f"method = {config.method!r} is not valid; choose one of {', '.join(METHODS)}")
    _check_model(config.model)
    if config.train.schedule != "simultaneous":
        raise UsageError("VFF-Net trains every group on every batch; set train.schedule = 'simultaneous'")
    num_groups = len(layer_groups(config.model.hidden, config.model.grouping))
    if config.method == "ff" and config.train.skip_first >= num_groups:
        raise UsageError(
            f"train.skip_first = {config.train.skip_first} leaves none of the {num_groups} layer groups "
            f"to predict from; use at most {num_groups - 1}"
        )
    return config


def layer_groups(widths: Sequence[int], grouping: bool = True) -> list[tuple[int, int]]:
    """Split layers into local units: runs of consecutive equal widths, or one layer each.

    Args:
        widths: output width (or channel count) of each layer, bottom first.
        grouping: False gives one group per layer.

    Returns:
        `(start, stop)` index ranges, bottom first, covering every layer once.
    """
    groups: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(widths) + 1):
        if i == len(widths) or not grouping or widths[i] != widths[start]:
            groups.append((start, i))
            start = i
    return groups


def normalize_sample(x: torch.Tensor) -> torch.Tensor:
    """RMS-normalise each sample of `(batch, ...)` over all its values (see `rms_normalize`)."""
    return rms_normalize(x.flatten(1)).view_as(x)


class SampleRMSNorm(nn.Module):
    """`normalize_sample` as a module, for the backprop baseline of the same network."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return `(batch, ...)` samples with mean square 1."""
        return normalize_sample(x)


def build_layers(model: VFFModelConfig, input_shape: tuple[int, ...], extra_channels: int = 0) -> list[nn.Module]:
    """Create the layers: `Linear -> ReLU` (fc), or `Conv2d -> ReLU [-> MaxPool2d(2)]` (conv).

    Args:
        model: the architecture.
        input_shape: `(features,)` for fc, `(channels, height, width)` for conv.
        extra_channels: input channels added by the label embedding.

    Returns:
        One `nn.Sequential` per layer.
    """
    layers: list[nn.Module] = []
    width = input_shape[0] + extra_channels if model.kind == "conv" else math.prod(input_shape)
    for index, units in enumerate(model.hidden, start=1):
        if model.kind == "fc":
            layers.append(nn.Sequential(nn.Linear(width, units), nn.ReLU()))
        else:
            parts = [nn.Conv2d(width, units, model.kernel_size, padding=model.kernel_size // 2), nn.ReLU()]
            if index in model.pool_after:
                parts.append(nn.MaxPool2d(2))
            layers.append(nn.Sequential(*parts))
        width = units
    return layers


def make_label_embedding(model: VFFModelConfig, input_shape: tuple[int, ...], num_classes: int) -> LabelEmbedding:
    """Create the label embedding that `model.labels` names, for inputs of `input_shape`."""
    if model.labels == "noise":
        return NoiseLabels(num_classes, input_shape, model.noise_amplitude, model.noise_seed)
    if model.labels == "channels":
        return ChannelLabels(num_classes, model.label_strength)
    return PixelLabels(num_classes, model.label_strength)


class VFFNet(nn.Module):
    """A stack of FC or conv layers trained in local groups, with a label embedding.

    Args:
        layers: modules mapping the normalised output of the layer below to activities,
            `(batch, units)` or `(batch, channels, height, width)`.
        widths: output width or channel count of each layer.
        labels: how the label enters the input.
        input_shape: shape of one input without the batch axis.
        goodness: registered goodness name, applied per position over channels.
        threshold: theta; None picks the goodness's default for each group's channel count.
        cosine_weight: weight of the cosine contrastive loss.
        cosine_margin: its margin.
        grouping: train runs of equal widths as one unit.

    Raises:
        UsageError: no layers, widths that do not match the layers, or an unknown goodness.
    """

    def __init__(
        self,
        layers: Sequence[nn.Module],
        widths: Sequence[int],
        labels: LabelEmbedding,
        input_shape: tuple[int, ...],
        goodness: str = "sum_of_squares",
        threshold: float | None = None,
        cosine_weight: float = 1.0,
        cosine_margin: float = 0.0,
        grouping: bool = True,
    ) -> None:
        super().__init__()
        if len(layers) == 0 or len(layers) != len(widths):
            raise UsageError(f"VFFNet needs one width per layer, got {len(layers)} layers and {len(widths)} widths")
        self.layers = nn.ModuleList(layers)
        self.widths = [int(w) for w in widths]
        self.labels = labels
        self.input_shape = tuple(input_shape)
        self.goodness_fn = get_goodness(goodness)
        self.groups = layer_groups(self.widths, grouping)
        self.thresholds = [
            default_threshold(goodness, self.widths[stop - 1]) if threshold is None else float(threshold)
            for _, stop in self.groups
        ]
        self.cosine_weight = float(cosine_weight)
        self.cosine_margin = float(cosine_margin)

    @property
    def num_classes(self) -> int:
        """Number of classes of the label embedding."""
        return self.labels.num_classes

    def group_modules(self, group: int) -> nn.ModuleList:
        """Return the layers of one group, for its optimizer."""
        start, stop = self.groups[group]
        return nn.ModuleList(self.layers[start:stop])

    def prepare(self, images: torch.Tensor, labels: torch.Tensor | str) -> torch.Tensor:
        """Reshape `(batch, features)` images, embed labels and normalise each sample.

        Args:
            images: `(batch, features)` flattened images.
            labels: `(batch,)` labels, `"neutral"`, or `"every"` (one copy per class).

        Returns:
            `(rows, *input_shape)` network inputs (channels may grow by the label planes);
            rows is `num_classes * batch` for `"every"`, else batch.
        """
        x = images.view(images.shape[0], *self.input_shape)
        if isinstance(labels, str):
            x = self.labels.embed_neutral(x) if labels == "neutral" else self.labels.embed_every_label(x)
        else:
            x = self.labels.embed(x, labels)
        return normalize_sample(x)

    def group_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Compute the activities of the last layer of every group for prepared inputs `x`."""
        outputs = []
        h = x
        for group in range(len(self.groups)):
            a, h = self.run_group(group, h)
            outputs.append(a)
        return outputs

    def run_group(self, group: int, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run one group's layers on the normalised output `h` of the group below.

        `h` is detached first, so a loss on this group's activities trains all of the group's
        layers together but never reaches a lower group.

        Returns:
            `(activity, h_next)`: the last layer's activities and their normalised copy, the
            input of the next group.
        """
        start, stop = self.groups[group]
        h = h.detach()  # the gradient stops at the group's input: this keeps training group-local
        for index in range(start, stop):
            a = self.layers[index](h)
            h = normalize_sample(a)
        return a, h

    def goodness(self, activity: torch.Tensor) -> torch.Tensor:
        """Goodness `(batch,)`: the goodness over channels at each position, averaged over positions.

        Args:
            activity: `(batch, units)` or `(batch, channels, height, width)`.
        """
        if activity.dim() == 2:
            return self.goodness_fn(activity)
        batch, channels = activity.shape[:2]
        per_position = activity.flatten(2).transpose(1, 2).reshape(-1, channels)  # (batch * positions, channels)
        return self.goodness_fn(per_position).view(batch, -1).mean(dim=1)

    def group_loss(
        self, group: int, activity_pos: torch.Tensor, activity_neg: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss of one group: the FF threshold loss plus the weighted cosine contrastive loss.

        Args:
            group: 0-based group index (selects the threshold).
            activity_pos: the group's last activities on positive inputs.
            activity_neg: the same on their negative counterparts (same images, wrong labels).

        Returns:
            `(loss, metrics)`: the scalar loss with its graph and detached scalar metrics
            `loss`, `goodness_pos`, `goodness_neg`, `cosine` (the unweighted cosine term).
        """
        g_pos, g_neg = self.goodness(activity_pos), self.goodness(activity_neg)
        loss = threshold_loss(g_pos, g_neg, self.thresholds[group])
        cosine = torch.zeros((), device=activity_pos.device)
        if self.cosine_weight > 0:
            cosine = cosine_contrastive_loss(activity_pos, activity_neg, self.cosine_margin)
            loss = loss + self.cosine_weight * cosine
        metrics = {"loss": loss.detach(), "goodness_pos": g_pos.detach().mean(),
                   "goodness_neg": g_neg.detach().mean(), "cosine": cosine.detach()}
        return loss, metrics

    @torch.no_grad()
    def goodness_per_label(self, images: torch.Tensor) -> torch.Tensor:
        """Compute every group's goodness for every candidate label, in one batched pass.

        Args:
            images: `(batch, features)` flattened images without labels.

        Returns:
            `(batch, num_groups, num_classes)` goodness.
        """
        batch = images.shape[0]
        outputs = self.group_outputs(self.prepare(images, "every"))
        per_group = [self.goodness(a).view(self.num_classes, batch) for a in outputs]  # (classes, batch) each
        return torch.stack(per_group).permute(2, 0, 1)  # (batch, groups, classes)


def build_network(model: VFFModelConfig, image_shape: tuple[int, ...], num_classes: int) -> VFFNet:
    """Create the `VFFNet` that `model` describes for images of `image_shape` `(C, H, W)`."""
    input_shape = tuple(image_shape) if model.kind == "conv" else (math.prod(image_shape),)
    labels = make_label_embedding(model, input_shape, num_classes)
    layers = build_layers(model, input_shape, labels.extra_channels)
    return VFFNet(layers, model.hidden, labels, input_shape, goodness=model.goodness,
                  threshold=model.threshold, cosine_weight=model.cosine_weight,
                  cosine_margin=model.cosine_margin, grouping=model.grouping)


def build_backprop_baseline(model: VFFModelConfig, image_shape: tuple[int, ...], num_classes: int) -> BackpropClassifier:
    """Create the same layers, with the same normalisation between them, as a backprop classifier.

    The input carries no label; a linear layer maps the last layer's flattened activities to logits.
    """
    input_shape = tuple(image_shape) if model.kind == "conv" else (math.prod(image_shape),)
    body: list[nn.Module] = [SampleRMSNorm()]
    for layer in build_layers(model, input_shape):
        body += [layer, SampleRMSNorm()]
    return BackpropClassifier(body[:-1], input_shape, num_classes)


def _image_shape(data: TrainingData) -> tuple[int, ...]:
    if data.image_shape is None:
        return (data.train_images.shape[1],)
    return tuple(data.image_shape)


def make_trainer(config: VFFRunConfig, data: TrainingData, device: torch.device):
    """Create the trainer of a VFF-Net run: `VFFTrainer`, or `BackpropTrainer` for `method = "backprop"`."""
    torch.manual_seed(config.train.seed)  # the weights' initialisation
    if config.method == "backprop":
        model = build_backprop_baseline(config.model, _image_shape(data), data.num_classes).to(device)
        return BackpropTrainer(model, data, config.optimizer, config.train, device)
    return VFFTrainer(config, data, device)


class VFFTrainer(ResumableTrainer):
    """Owns a `VFFNet`, one optimizer per layer group, the read-out and the random generators.

    Has the interface of the core `Trainer`, so `forwardforward.training.train` runs it.

    Args:
        config: the run's configuration.
        data: the splits, on `device`.
        device: where the model and data live.

    Raises:
        UsageError: hard negatives from a disabled read-out, or image shapes that do not fit.
    """

    def __init__(self, config: VFFRunConfig, data: TrainingData, device: torch.device) -> None:
        self.config = config
        self.data = data
        self.device = device
        image_shape = _image_shape(data)
        if config.model.kind == "conv" and len(image_shape) != 3:
            raise UsageError(f"model.kind = 'conv' needs images of shape (C, H, W), got {image_shape}")
        self.network = build_network(config.model, image_shape, data.num_classes).to(device)
        self.optimizers = [build_optimizer(self.network.group_modules(g), config.optimizer)
                           for g in range(len(self.network.groups))]
        self.readout: LinearReadout | None = None
        if config.readout.enabled:
            with torch.no_grad():
                probe = self.network.group_outputs(self.network.prepare(data.train_images[:1], "neutral"))
            widths = [a[0].numel() for a in probe]
            check_skip(config.train.skip_first, len(widths))
            self.readout = LinearReadout(widths, data.num_classes, config.train.skip_first,
                                         bias=config.readout.bias).to(device)
            self.readout.configure_optimizer(config.readout.optimizer)
        if config.negatives.kind == "hard" and config.negatives.hard_source == "readout" and self.readout is None:
            raise UsageError(
                "negatives.hard_source = 'readout' needs the read-out; set readout.enabled = true "
                "or negatives.hard_source = 'goodness'"
            )
        self.shuffle_generator = torch.Generator().manual_seed(config.train.seed + 1)
        self.negatives_generator = torch.Generator(device=device).manual_seed(config.train.seed + 2)
        self.epoch = 0

    @property
    def total_epochs(self) -> int:
        """Number of epochs of the run."""
        return self.config.train.epochs

    def _negative_labels(self, images: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor | None) -> torch.Tensor:
        negatives = self.config.negatives
        if negatives.kind == "random":
            return random_wrong_labels(labels, self.data.num_classes, self.negatives_generator)
        if negatives.hard_source == "readout":
            scores = logits
        else:
            scores = self.network.goodness_per_label(images)[:, self.config.train.skip_first :].sum(dim=1)
        return hard_wrong_labels(scores, labels, self.negatives_generator, negatives.temperature)

    def train_batch(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Update every layer group and the read-out on one minibatch.

        Args:
            images: `(batch, features)` flattened images without labels.
            labels: `(batch,)` true labels.

        Returns:
            Detached values: summed group losses, then loss, positive goodness, negative
            goodness and cosine term per group (flattened `(num_groups, 4)`), then the read-out
            loss and its number of errors before its update.
        """
        batch = images.shape[0]
        num_groups = len(self.network.groups)
        stats = torch.zeros(num_groups, 4, device=self.device)
        readout_stats = torch.zeros(2, device=self.device)

        # The neutral pass feeds the read-out, whose logits also pick hard negatives.
        logits = None
        if self.readout is not None:
            with torch.no_grad():
                neutral = self.network.group_outputs(self.network.prepare(images, "neutral"))
            logits, loss = self.readout.train_step([a.flatten(1) for a in neutral], labels)
            readout_stats[0] = loss
            readout_stats[1] = (logits.argmax(dim=1) != labels).sum()
        with torch.no_grad():
            negative_labels = self._negative_labels(images, labels, logits)

        # Positives and their negative counterparts (same images, wrong labels) in one batch.
        h = torch.cat([self.network.prepare(images, labels), self.network.prepare(images, negative_labels)])
        for group in range(num_groups):
            a, h = self.network.run_group(group, h)
            loss, metrics = self.network.group_loss(group, a[:batch], a[batch:])
            self.optimizers[group].zero_grad(set_to_none=True)
            loss.backward()
            self.optimizers[group].step()
            stats[group] = torch.stack([metrics["loss"], metrics["goodness_pos"],
                                        metrics["goodness_neg"], metrics["cosine"]])
        return torch.cat([stats[:, 0].sum().view(1), stats.flatten(), readout_stats])

    def train_epoch(self, progress: bool = True) -> dict:
        """Run the next epoch and return its training metrics (`group{g}/loss` and others).

        Raises:
            TrainingError: a loss or goodness became NaN or infinite.
        """
        epoch = self.epoch + 1
        train_cfg = self.config.train
        gain = lr_gain(train_cfg.lr_schedule, epoch, self.total_epochs)
        for optimizer in self.optimizers:
            set_gain(optimizer, self.config.optimizer.lr, gain)
        if self.readout is not None:
            set_gain(self.readout.optimizer, self.config.readout.optimizer.lr, gain)
        images, labels = self.data.train_images, self.data.train_labels
        order = epoch_order(images.shape[0], train_cfg.shuffle, self.shuffle_generator, self.device)
        self.network.train()
        sums, num_batches, elapsed = run_epoch(
            self.train_batch, images, labels, train_cfg.batch_size, order, epoch, self.total_epochs, progress
        )
        means = (sums / num_batches).tolist()
        n = images.shape[0]
        record: dict = {"epoch": epoch, "lr_gain": gain}
        for g in range(len(self.network.groups)):
            for k, key in enumerate(("loss", "goodness_pos", "goodness_neg", "cosine")):
                record[f"group{g + 1}/{key}"] = means[1 + 4 * g + k]
        if self.readout is not None:
            record["train/readout_loss"] = means[-2]
            record["train/error_softmax"] = 100.0 * sums[-1].item() / n
        record["epoch_time_s"] = elapsed
        record["samples_per_s"] = n / elapsed
        self.epoch = epoch
        return record

    @torch.no_grad()
    def evaluate_split(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """Error rates in percent on one split: by goodness, by the read-out, and per group.

        Returns:
            `error_goodness` (goodness summed over groups from `train.skip_first` on),
            `error_softmax` (read-out on the neutral pass) and `error_group{g}` (1-based).
        """
        self.network.eval()
        skip = self.config.train.skip_first
        num_groups = len(self.network.groups)
        wrong = torch.zeros(2 + num_groups, dtype=torch.long, device=images.device)
        for start in range(0, images.shape[0], self.config.train.eval_batch_size):
            x = images[start : start + self.config.train.eval_batch_size]
            y = labels[start : start + self.config.train.eval_batch_size]
            goodness = self.network.goodness_per_label(x)  # (batch, groups, classes)
            wrong[0] += (goodness[:, skip:].sum(dim=1).argmax(dim=1) != y).sum()
            wrong[2:] += (goodness.argmax(dim=2) != y.unsqueeze(1)).sum(dim=0)
            if self.readout is not None:
                neutral = self.network.group_outputs(self.network.prepare(x, "neutral"))
                wrong[1] += (self.readout([a.flatten(1) for a in neutral]).argmax(dim=1) != y).sum()
        self.network.train()
        n = max(images.shape[0], 1)
        counts = wrong.tolist()
        result = {"error_goodness": 100.0 * counts[0] / n}
        if self.readout is not None:
            result["error_softmax"] = 100.0 * counts[1] / n
        for g, count in enumerate(counts[2:], start=1):
            result[f"error_group{g}"] = 100.0 * count / n
        return result

    def evaluate(self) -> dict:
        """Error rates in percent on every evaluation split, with keys like `test/error_goodness`."""
        return evaluate_splits(self.data.eval_splits, self.evaluate_split)

    def checkpoint_parts(self) -> CheckpointParts:
        """Return the weights, noise patterns, optimizers, read-out and random generators by checkpoint key."""
        return CheckpointParts(
            parts={
                "network": self.network,
                "group_optimizers": list(self.optimizers),
                "readout": self.readout,
                "readout_optimizer": None if self.readout is None else self.readout.optimizer,
            },
            generators={"shuffle_rng": self.shuffle_generator, "negatives_rng": self.negatives_generator},
        )
