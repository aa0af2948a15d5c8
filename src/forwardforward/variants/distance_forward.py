"""Distance-Forward: Forward-Forward as centroid metric learning, for deep conv nets.

After Wu et al. 2024, "Distance-Forward Learning" (arXiv 2408.14925). A recipe selects it
with `variant = "df"`. Every layer keeps class centroids (`df_goodness.ClassCentroids`). The
goodness of a sample for a class is its negative distance to that class's centroid, and each
layer minimises a goodness-based N-pair margin loss. `model.collaboration` chooses how layers
share learning signals:

- `greedy`: every layer learns from its own loss only; the gradient stops at its input.
- `overlap` (DF-O): blocks of two adjacent layers (l - 1, l) are trained on layer l's loss,
  so layer l - 1 also learns from the loss of the layer above. The gradient stops at the
  block's input and never reaches layer l - 2.
- `feedback` (DF-R): layer l also receives the error of layer l + 1's representation,
  carried down through fixed random weights.

`method = "backprop"` trains the same blocks end to end with cross-entropy (the baseline).
Prediction: nearest centroid at the last layer (`error_centroid`) and goodness summed over the
layers from `train.skip_first` on (`error_goodness`). Our formulas are in docs/algorithms.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..baselines.end_to_end import BackpropClassifier, BackpropTrainer
from ..config import DataConfig, TrainConfig, check_choice, dataclass_from_dict
from ..data.augment import jitter_images
from ..errors import UsageError
from ..optim import OptimizerConfig, build_optimizer
from ..training.checkpoint import CheckpointParts, ResumableTrainer
from ..training.evaluation import evaluate_splits
from ..training.loop import epoch_order, run_epoch
from ..training.schedules import lr_gain, set_gain
from ..training.trainer import TrainingData
from .df_goodness import CENTROID_MODES, DISTANCES, LOSS_FORMS, NEGATIVE_MODES, negative_mask, n_pair_margin_loss
from .df_network import DFNetwork, RepresentationPool, build_blocks

KINDS = ("conv", "fc")
COLLABORATIONS = ("greedy", "overlap", "feedback")
METHODS = ("df", "backprop")


@dataclass(frozen=True)
class DFModelConfig:
    """Architecture, centroids, loss and layer collaboration.

    Attributes:
        kind: `conv` (conv, batch norm, ReLU, pooling) or `fc` (linear, batch norm, ReLU).
        hidden: output channels (conv) or units (fc) of each layer, bottom first.
        kernel_size: conv kernel side, odd; same padding.
        pool_after: 1-based conv layers followed by 2 x 2 max pooling.
        batch_norm: batch norm before each ReLU.
        grid: conv: the representation is the layer output average-pooled to grid x grid
            and flattened; 0 flattens the whole map.
        distance: `cosine` or `squared_euclidean` (divided by the representation size).
        centroids: `learned` (a parameter) or `running_mean` (a buffer of class means).
        centroid_momentum: momentum of running-mean centroids, in [0, 1).
        negatives: negative classes per sample: `all`, `random` (N of them) or `hardest` (N).
        num_negatives: N for `random` and `hardest`.
        loss: `softplus` (smooth N-pair loss) or `hinge`.
        margin: the lead the true class's goodness must have over each negative's.
        scale: sharpness s of the softplus form.
        collaboration: `greedy`, `overlap` (DF-O) or `feedback` (DF-R).
        feedback_strength: DF-R: weight of the error fed back from the layer above.
    """

    kind: str = "conv"
    hidden: tuple[int, ...] = (32, 64, 128, 128)
    kernel_size: int = 3
    pool_after: tuple[int, ...] = (1, 2, 4)
    batch_norm: bool = True
    grid: int = 2
    distance: str = "cosine"
    centroids: str = "learned"
    centroid_momentum: float = 0.9
    negatives: str = "all"
    num_negatives: int = 9
    loss: str = "softplus"
    margin: float = 0.1
    scale: float = 16.0
    collaboration: str = "greedy"
    feedback_strength: float = 1.0


@dataclass(frozen=True)
class DFRunConfig:
    """Everything that defines one Distance-Forward run (`variant = "df"` in a recipe).

    Attributes:
        method: `df` (layer-local Distance-Forward training) or `backprop` (the same blocks,
            average-pooled like the last layer's representation, with a linear softmax layer,
            trained end to end: the baseline).
        The tables `data`, `optimizer` and `train` are those of the core `RunConfig`.
    """

    name: str = "custom"
    description: str = ""
    variant: str = "df"
    method: str = "df"
    data: DataConfig = field(default_factory=DataConfig)
    model: DFModelConfig = field(default_factory=DFModelConfig)
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(name="adam", lr=1e-3, weight_decay=0.0))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr_schedule="hinton", skip_first=0))


def _check_model(model: DFModelConfig) -> None:
    for key, allowed in (("kind", KINDS), ("distance", DISTANCES), ("centroids", CENTROID_MODES),
                         ("negatives", NEGATIVE_MODES), ("loss", LOSS_FORMS), ("collaboration", COLLABORATIONS)):
        check_choice(f"model.{key}", getattr(model, key), allowed)
    if not model.hidden or any(width <= 0 for width in model.hidden):
        raise UsageError(f"model.hidden must list positive widths, got {list(model.hidden)}")
    if model.kernel_size <= 0 or model.kernel_size % 2 == 0:
        raise UsageError(f"model.kernel_size must be a positive odd number, got {model.kernel_size}")
    bad_pools = [p for p in model.pool_after if not 1 <= p <= len(model.hidden)]
    if bad_pools:
        raise UsageError(f"model.pool_after lists layers {bad_pools} outside 1..{len(model.hidden)}")
    if model.kind == "fc" and model.pool_after:
        raise UsageError("model.pool_after needs model.kind = 'conv'; remove it for fully connected layers")
    if model.grid < 0:
        raise UsageError(f"model.grid must not be negative, got {model.grid}")
    if not 0.0 <= model.centroid_momentum < 1.0:
        raise UsageError(f"model.centroid_momentum must be in [0, 1), got {model.centroid_momentum}")
    if model.num_negatives < 1:
        raise UsageError(f"model.num_negatives must be at least 1, got {model.num_negatives}")
    if model.margin < 0 or model.scale <= 0 or model.feedback_strength < 0:
        raise UsageError(
            f"model.margin and model.feedback_strength must not be negative and model.scale must be "
            f"positive; got {model.margin}, {model.feedback_strength} and {model.scale}"
        )
    if model.collaboration == "overlap" and len(model.hidden) < 2:
        raise UsageError("model.collaboration = 'overlap' needs at least 2 layers to form a block of two")


def config_from_dict(values: dict) -> DFRunConfig:
    """Build a `DFRunConfig` from nested dictionaries, as read from a recipe.

    Raises:
        UsageError: an unknown key, a value of the wrong type or out of range, or settings
            that do not fit together.
    """
    config = dataclass_from_dict(DFRunConfig, values)
    check_choice("method", config.method, METHODS)
    _check_model(config.model)
    if config.train.schedule != "simultaneous":
        raise UsageError("Distance-Forward trains every layer on every batch; set train.schedule = 'simultaneous'")
    if config.train.skip_first >= len(config.model.hidden):
        raise UsageError(
            f"train.skip_first = {config.train.skip_first} leaves none of the {len(config.model.hidden)} "
            f"layers to predict from; use at most {len(config.model.hidden) - 1}"
        )
    return config


def _input_shape(model: DFModelConfig, data: TrainingData) -> tuple[int, ...]:
    if model.kind == "conv":
        if data.image_shape is None:
            raise UsageError("model.kind = 'conv' needs a data set with an image shape (C, H, W)")
        return tuple(data.image_shape)
    return (data.train_images.shape[1],)


def build_backprop_baseline(model: DFModelConfig, input_shape: tuple[int, ...], num_classes: int) -> BackpropClassifier:
    """Create the same blocks, ending in the last layer's representation pooling, as a backprop classifier."""
    blocks = build_blocks(model, input_shape)
    return BackpropClassifier([*blocks, RepresentationPool(blocks[-1])], input_shape, num_classes)


def make_trainer(config: DFRunConfig, data: TrainingData, device: torch.device):
    """Create the trainer of a Distance-Forward run: `DFTrainer`, or `BackpropTrainer` for `method = "backprop"`.

    Raises:
        UsageError: a conv model on data without an image shape, or layers that do not fit it.
    """
    torch.manual_seed(config.train.seed)  # the weights' initialisation
    if config.method == "backprop":
        shape = _input_shape(config.model, data)
        model = build_backprop_baseline(config.model, shape, data.num_classes).to(device)
        return BackpropTrainer(model, data, config.optimizer, config.train, device,
                               jitter=config.data.jitter, image_shape=data.image_shape)
    return DFTrainer(config, data, device)


class DFTrainer(ResumableTrainer):
    """Owns a `DFNetwork`, its optimizer and the random generators of a Distance-Forward run.

    Has the interface of the core `Trainer`, so `forwardforward.training.train` runs it. One
    optimizer contains every parameter, because each gradient is already local by construction
    (the graph is cut at each layer's input), and Adam's update is per parameter.

    Args:
        config: the run's configuration.
        data: the splits, on `device`.
        device: where the model and data live.

    Raises:
        UsageError: a conv model on data without an image shape, or layers that do not fit it.
    """

    def __init__(self, config: DFRunConfig, data: TrainingData, device: torch.device) -> None:
        self.config = config
        self.data = data
        self.device = device
        torch.manual_seed(config.train.seed)
        self.network = DFNetwork(config.model, _input_shape(config.model, data), data.num_classes).to(device)
        self.optimizer = build_optimizer(self.network, config.optimizer)
        self.shuffle_generator = torch.Generator().manual_seed(config.train.seed + 1)
        self.negatives_generator = torch.Generator(device=device).manual_seed(config.train.seed + 2)
        self.jitter_generator = torch.Generator(device=device).manual_seed(config.train.seed + 3)
        self.epoch = 0

    @property
    def total_epochs(self) -> int:
        """Number of epochs of the run."""
        return self.config.train.epochs

    def accumulate_gradients(self, images: torch.Tensor, labels: torch.Tensor,
                             loss_weights: list[float] | None = None) -> torch.Tensor:
        """Run the blocks on a batch and accumulate every parameter's gradient, layer by layer.

        Each block reads a detached copy of the layer below's output, so a layer's own loss
        never reaches the layers below it. Each layer's backward pass runs as soon as its loss
        is known, which frees its graph early. Greedy training keeps one layer's graph alive at
        a time, DF-O and DF-R two, because the layer below waits for the signal of the layer above.

        Args:
            images: `(batch, C * H * W)` images.
            labels: `(batch,)` classes.
            loss_weights: a factor per layer on its loss (all 1 when None); a 0 silences a
                layer, which shows where its learning signal goes.

        Returns:
            `(layers, 3)` detached values: per layer its loss, mean positive and mean negative
            goodness.
        """
        model = self.config.model
        collaboration = model.collaboration
        blocks, heads = self.network.blocks, self.network.centroids
        weights = loss_weights if loss_weights is not None else [1.0] * len(blocks)
        h = self.network.prepare(images)
        stats = []
        below = None  # DF-O: the output of the layer below; DF-R: its representation
        for index, (block, centroids) in enumerate(zip(blocks, heads)):
            # Layer-local training: the graph is cut here. DF-O keeps the leaf's gradient so
            # that it can be sent one layer further down.
            leaf = h.detach().requires_grad_(collaboration == "overlap" and index > 0)
            out = block(leaf)
            z = block.representation(out)
            if collaboration == "feedback":
                z.retain_grad()
            goodness = centroids(z)
            mask = negative_mask(goodness, labels, model.negatives, model.num_negatives, self.negatives_generator)
            loss = n_pair_margin_loss(goodness, labels, mask, model.margin, model.loss, model.scale)
            centroids.update(z.detach(), labels)
            # TODO: DF-O keeps the layer below's graph until this layer's gradient arrives, so it
            # needs as much memory as backprop in shallow nets (docs/results.md). Recomputing the
            # layer below from its detached input would cut that to one layer's graph.
            (weights[index] * loss).backward(retain_graph=collaboration != "greedy")
            if below is not None and collaboration == "overlap":
                # DF-O: this layer's loss, as the gradient at its input, continues through the
                # layer below into that layer's parameters only: the block (l - 1, l) stops there.
                torch.autograd.backward(below, leaf.grad, inputs=list(blocks[index - 1].parameters()))
            elif below is not None:
                # DF-R: this layer's error at its representation, projected down by fixed random
                # weights, becomes an extra gradient of the layer below's representation.
                signal = model.feedback_strength * z.grad @ self.network.feedback(index - 1).T
                torch.autograd.backward(below, signal, inputs=list(blocks[index - 1].parameters()))
            if collaboration == "overlap":
                below = out
            elif collaboration == "feedback":
                below = z
            positive = goodness.detach().gather(1, labels.view(-1, 1)).mean()
            negative = (goodness.detach() * mask).sum() / mask.sum()
            stats.append(torch.stack([loss.detach(), positive, negative]))
            h = out
        return torch.stack(stats)

    def train_batch(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Update every layer and centroid on one minibatch.

        Returns:
            `(1 + 3 * layers,)` detached values: the summed loss, then per layer its loss and
            mean positive and negative goodness.
        """
        if self.config.data.jitter:
            images = jitter_images(images, self.data.image_shape, self.config.data.jitter, self.jitter_generator)
        self.optimizer.zero_grad(set_to_none=True)
        layer_stats = self.accumulate_gradients(images, labels)  # (layers, 3)
        self.optimizer.step()
        return torch.cat([layer_stats[:, 0].sum().view(1), layer_stats.flatten()])

    def train_epoch(self, progress: bool = True) -> dict:
        """Run the next epoch and return its metrics (`layer{l}/loss`, goodness means, timings).

        Raises:
            TrainingError: a loss or goodness became NaN or infinite.
        """
        epoch = self.epoch + 1
        train_cfg = self.config.train
        gain = lr_gain(train_cfg.lr_schedule, epoch, self.total_epochs)
        set_gain(self.optimizer, self.config.optimizer.lr, gain)
        images, labels = self.data.train_images, self.data.train_labels
        order = epoch_order(images.shape[0], train_cfg.shuffle, self.shuffle_generator, self.device)
        self.network.train()
        sums, num_batches, elapsed = run_epoch(
            self.train_batch, images, labels, train_cfg.batch_size, order, epoch, self.total_epochs, progress
        )
        means = (sums / num_batches).tolist()
        record: dict = {"epoch": epoch, "lr_gain": gain, "train/loss": means[0]}
        for layer in range(len(self.network.blocks)):
            for k, key in enumerate(("loss", "goodness_pos", "goodness_neg")):
                record[f"layer{layer + 1}/{key}"] = means[1 + 3 * layer + k]
        record["epoch_time_s"] = elapsed
        record["samples_per_s"] = images.shape[0] / elapsed
        self.epoch = epoch
        return record

    @torch.no_grad()
    def evaluate_split(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """Error rates in percent on one split.

        Returns:
            `error_centroid` (nearest centroid at the last layer), `error_goodness` (goodness
            summed over layers from `train.skip_first` on) and `error_layer{l}` (1-based).
        """
        was_training = self.network.training
        self.network.eval()
        skip = self.config.train.skip_first
        num_layers = len(self.network.blocks)
        wrong = torch.zeros(1 + num_layers, dtype=torch.long, device=images.device)
        batch_size = self.config.train.eval_batch_size
        for start in range(0, images.shape[0], batch_size):
            y = labels[start : start + batch_size]
            goodness = self.network.goodness_per_layer(images[start : start + batch_size])  # (batch, layers, classes)
            wrong[0] += (goodness[:, skip:].sum(dim=1).argmax(dim=1) != y).sum()
            wrong[1:] += (goodness.argmax(dim=2) != y.unsqueeze(1)).sum(dim=0)
        self.network.train(was_training)
        n = max(images.shape[0], 1)
        counts = wrong.tolist()
        result = {"error_centroid": 100.0 * counts[-1] / n, "error_goodness": 100.0 * counts[0] / n}
        for layer, count in enumerate(counts[1:], start=1):
            result[f"error_layer{layer}"] = 100.0 * count / n
        return result

    def evaluate(self) -> dict:
        """Error rates in percent on every evaluation split, with keys like `test/error_centroid`."""
        return evaluate_splits(self.data.eval_splits, self.evaluate_split)

    def checkpoint_parts(self) -> CheckpointParts:
        """Return the weights, centroids, feedback weights, optimizer and random generators by checkpoint key."""
        return CheckpointParts(
            parts={"network": self.network, "optimizer": self.optimizer},
            generators={"shuffle_rng": self.shuffle_generator, "negatives_rng": self.negatives_generator,
                        "jitter_rng": self.jitter_generator},
        )


__all__ = ["DFModelConfig", "DFRunConfig", "DFTrainer", "build_backprop_baseline", "config_from_dict", "make_trainer"]
