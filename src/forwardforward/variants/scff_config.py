"""Run configuration of Self-Contrastive FF: frozen dataclasses read from recipe TOML files.

A recipe selects this configuration with `variant = "scff"` at its top level. Per-layer
settings are lists with one entry per layer, bottom first, so that `--set` can override them
(`--set model.hidden=[500,500]`). Values are checked when the configuration is built, and a
bad one raises `UsageError` naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import check_choice
from ..errors import UsageError

DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar10-jpeg")
KINDS = ("mlp", "conv", "recurrent")
ACTIVATIONS = ("triangle", "relu")
POOLS = ("max", "avg", "none")
AUGMENT_MODES = ("none", "same", "independent")
SCHEDULES = ("greedy", "simultaneous")


@dataclass(frozen=True)
class SCFFDataConfig:
    """Data set, split and the augmentation of the two halves of each pair.

    Attributes:
        dataset: `mnist`, `fashion-mnist`, `cifar10` (the binary version) or `cifar10-jpeg`
            (the same layout in a `cifar10-jpeg/` folder, rebuilt from lossy JPEG images).
        split: `hinton` (the last 10,000 training images held out for validation) or `full`.
        limit: keep only the first N samples of every split; None keeps all.
        augment: `none` pairs the raw sample with itself; `same` augments it once and uses
            that view for both halves; `independent` augments the two halves separately.
        layer_augment: greedy schedule only: one of those modes per layer, used while that
            layer trains; empty uses `augment` for every layer.
        max_shift: largest random translation of an augmented view, in pixels.
        flip: also mirror augmented views left to right at random.
    """

    dataset: str = "mnist"
    split: str = "hinton"
    limit: int | None = None
    augment: str = "independent"
    layer_augment: tuple[str, ...] = ()
    max_shift: int = 2
    flip: bool = False


@dataclass(frozen=True)
class SCFFModelConfig:
    """Architecture and per-layer objective; every tuple has one entry per layer.

    Attributes:
        kind: `mlp` (fully connected), `conv` (convolutional) or `recurrent` (one
            bidirectional recurrent layer over the rows of each image).
        hidden: units (mlp, recurrent) or channels (conv) of each layer.
        activation: activity passed on by each layer: `triangle` is ReLU(z - mean over
            channels of z), `relu` is ReLU(z).
        threshold_pos: theta+ of each layer's split-threshold loss.
        threshold_neg: theta- of each layer's loss.
        penalty: lambda, the weight of the mean positive goodness in each layer's loss.
        num_negatives: negative pairs per positive pair.
        kernel_size: conv only: square kernel size of each layer.
        padding: conv only: reflect padding added around each layer's input.
        pool: conv only: `max`, `avg` or `none` pooling after each layer's activation.
        pool_size: conv only: pooling window of each layer.
        pool_stride: conv only: pooling stride of each layer.
        pool_padding: conv only: zero padding of each layer's pooling.
    """

    kind: str = "mlp"
    hidden: tuple[int, ...] = (2000, 2000)
    activation: tuple[str, ...] = ("triangle", "triangle")
    threshold_pos: tuple[float, ...] = (1.0, 1.0)
    threshold_neg: tuple[float, ...] = (1.0, 1.0)
    penalty: tuple[float, ...] = (0.0005, 0.0005)
    num_negatives: int = 1
    kernel_size: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    pool: tuple[str, ...] = ()
    pool_size: tuple[int, ...] = ()
    pool_stride: tuple[int, ...] = ()
    pool_padding: tuple[int, ...] = ()


@dataclass(frozen=True)
class SCFFOptimizerConfig:
    """AdamW per layer with a step-wise exponential learning-rate decay.

    Layer l's learning rate is `lr[l] * lr_decay[l] ** (steps_l // decay_every[l])`, where
    steps_l counts the minibatches that layer has trained on.

    Attributes:
        lr: base learning rate of each layer.
        weight_decay: decoupled weight decay of each layer's weight matrix (never biases).
        lr_decay: decay factor of each layer, in (0, 1].
        decay_every: minibatches between two decays, per layer.
    """

    lr: tuple[float, ...] = (0.002, 0.002)
    weight_decay: tuple[float, ...] = (0.0001, 0.0001)
    lr_decay: tuple[float, ...] = (0.6, 0.6)
    decay_every: tuple[int, ...] = (1500, 1500)


@dataclass(frozen=True)
class ProbeConfig:
    """The linear probe: a linear softmax on frozen, pooled, standardised features.

    Attributes:
        layers: 1-based layers whose features are concatenated.
        pool_size: conv only: max-pooling window applied to each chosen layer's output
            before it is standardised (one entry per chosen layer); empty means none.
        dropout: dropout probability on the features while the probe trains.
        epochs: probe training epochs over the training split.
        batch_size: probe minibatch size.
        lr: Adam learning rate, halved after 20, 35, 50, 60, 70, 80 and 90 % of the epochs.
    """

    layers: tuple[int, ...] = (1, 2)
    pool_size: tuple[int, ...] = ()
    dropout: float = 0.1
    epochs: int = 50
    batch_size: int = 64
    lr: float = 0.001


@dataclass(frozen=True)
class SCFFTrainConfig:
    """The unsupervised training loop.

    Attributes:
        schedule: `greedy` trains one layer at a time, the ones below frozen; `simultaneous`
            trains every layer on every minibatch.
        epochs: epochs of each layer (greedy) or of the whole network (simultaneous).
        layer_epochs: greedy only: epochs of each layer, overriding `epochs`; empty uses
            `epochs` for every layer.
        batch_size: samples per minibatch (positive pairs; negatives come on top).
        eval_every: train and evaluate the probe every N epochs, and always after the last.
        eval_batch_size: samples per batch when features are extracted.
        seed: seeds initialisation, shuffling, augmentation, pairing and the probe.
        device: `auto`, `cpu`, `cuda` or a device string such as `cuda:1`.
    """

    schedule: str = "greedy"
    epochs: int = 5
    layer_epochs: tuple[int, ...] = ()
    batch_size: int = 100
    eval_every: int = 1000
    eval_batch_size: int = 1000
    seed: int = 1234
    device: str = "auto"


@dataclass(frozen=True)
class SCFFRunConfig:
    """Everything that defines one Self-Contrastive FF run."""

    name: str = "scff"
    description: str = ""
    variant: str = "scff"
    data: SCFFDataConfig = field(default_factory=SCFFDataConfig)
    model: SCFFModelConfig = field(default_factory=SCFFModelConfig)
    optimizer: SCFFOptimizerConfig = field(default_factory=SCFFOptimizerConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    train: SCFFTrainConfig = field(default_factory=SCFFTrainConfig)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def num_layers(self) -> int:
        """Number of trained layers (2 for a bidirectional recurrent layer's directions)."""
        return 2 if self.model.kind == "recurrent" else len(self.model.hidden)

    def epochs_per_layer(self) -> tuple[int, ...]:
        """Epochs of each layer in the greedy schedule."""
        if self.train.layer_epochs:
            return self.train.layer_epochs
        return (self.train.epochs,) * self.num_layers

    def total_epochs(self) -> int:
        """Count all epochs of the run: the sum over layers (greedy) or `train.epochs`."""
        if self.train.schedule == "greedy":
            return sum(self.epochs_per_layer())
        return self.train.epochs


def _per_layer(key: str, values: tuple, count: int) -> None:
    if len(values) != count:
        raise UsageError(f"{key} needs one entry per layer ({count}), got {len(values)}: {list(values)}")


def validate(config: SCFFRunConfig) -> None:
    """Check every setting of an SCFF run.

    Raises:
        UsageError: a value out of range, an unknown choice, or a per-layer list whose length
            differs from the number of layers.
    """
    data, model, opt, probe, train = config.data, config.model, config.optimizer, config.probe, config.train
    check_choice("data.dataset", data.dataset, DATASETS)
    check_choice("data.split", data.split, ("hinton", "full"))
    check_choice("data.augment", data.augment, AUGMENT_MODES)
    for mode in data.layer_augment:
        check_choice("data.layer_augment", mode, AUGMENT_MODES)
    check_choice("model.kind", model.kind, KINDS)
    check_choice("train.schedule", train.schedule, SCHEDULES)
    if data.limit is not None and data.limit < 2:
        raise UsageError(f"data.limit must be at least 2, got {data.limit}")
    if data.max_shift < 0:
        raise UsageError(f"data.max_shift must not be negative, got {data.max_shift}")
    if not model.hidden or any(width <= 0 for width in model.hidden):
        raise UsageError(f"model.hidden must list positive widths, got {list(model.hidden)}")
    if model.kind == "recurrent" and len(model.hidden) != 1:
        raise UsageError(f"a recurrent model has one layer; model.hidden must list one width, got {list(model.hidden)}")
    layers = config.num_layers
    if data.layer_augment:
        _per_layer("data.layer_augment", data.layer_augment, layers)
        if train.schedule != "greedy":
            raise UsageError(f"data.layer_augment needs train.schedule = 'greedy', got {train.schedule!r}. "
                             "Under the simultaneous schedule all layers train on the same pairs, "
                             "so set data.layer_augment=[] and choose one mode with data.augment")
    for key in ("activation", "threshold_pos", "threshold_neg", "penalty"):
        _per_layer(f"model.{key}", getattr(model, key), layers)
    for name in model.activation:
        check_choice("model.activation", name, ACTIVATIONS)
    if any(value < 0 for value in model.penalty):
        raise UsageError(f"model.penalty must not be negative, got {list(model.penalty)}")
    for key in ("threshold_pos", "threshold_neg"):
        values = list(getattr(model, key))
        if any(value < 0 for value in values):
            raise UsageError(f"model.{key} must not be negative, got {values}: goodness (a mean of squares) "
                             "is never negative, so a negative threshold can never be crossed")
    if model.num_negatives < 1:
        raise UsageError(f"model.num_negatives must be at least 1, got {model.num_negatives}")
    if model.kind == "conv":
        for key in ("kernel_size", "padding", "pool", "pool_size", "pool_stride", "pool_padding"):
            _per_layer(f"model.{key}", getattr(model, key), layers)
        for name in model.pool:
            check_choice("model.pool", name, POOLS)
    for key in ("lr", "weight_decay", "lr_decay", "decay_every"):
        _per_layer(f"optimizer.{key}", getattr(opt, key), layers)
    if any(v < 0 for v in opt.lr + opt.weight_decay) or any(not 0 < d <= 1 for d in opt.lr_decay):
        raise UsageError("optimizer.lr and optimizer.weight_decay must not be negative, and optimizer.lr_decay "
                         f"must be in (0, 1]; got {list(opt.lr)}, {list(opt.weight_decay)}, {list(opt.lr_decay)}")
    if any(every < 1 for every in opt.decay_every):
        raise UsageError(f"optimizer.decay_every must be at least 1, got {list(opt.decay_every)}")
    if not probe.layers or any(not 1 <= layer <= layers for layer in probe.layers):
        raise UsageError(f"probe.layers must list layers from 1 to {layers}, got {list(probe.layers)}")
    if probe.pool_size and len(probe.pool_size) != len(probe.layers):
        raise UsageError(f"probe.pool_size needs one entry per probe layer ({len(probe.layers)}), "
                         f"got {list(probe.pool_size)}")
    if not 0 <= probe.dropout < 1:
        raise UsageError(f"probe.dropout must be in [0, 1), got {probe.dropout}")
    for key in ("epochs", "batch_size"):
        if getattr(probe, key) < 1:
            raise UsageError(f"probe.{key} must be positive, got {getattr(probe, key)}")
    if probe.lr <= 0:
        raise UsageError(f"probe.lr must be positive, got {probe.lr}")
    for key in ("epochs", "batch_size", "eval_every", "eval_batch_size"):
        if getattr(train, key) < 1:
            raise UsageError(f"train.{key} must be positive, got {getattr(train, key)}")
    if train.layer_epochs:
        _per_layer("train.layer_epochs", train.layer_epochs, layers)
        if any(e < 1 for e in train.layer_epochs):
            raise UsageError(f"train.layer_epochs must be positive, got {list(train.layer_epochs)}")
    if train.batch_size <= model.num_negatives:
        raise UsageError(f"train.batch_size = {train.batch_size} leaves no room for "
                         f"model.num_negatives = {model.num_negatives} distinct partners; use a larger batch")
