"""Run configuration of the neural cellular automaton (NCA) that classifies MNIST digits.

A recipe selects it with `variant = "nca"`. `trainer = "ff"` trains the update rule with
layer-local Forward-Forward losses at every step, with no backprop through time. `trainer =
"backprop"` trains the same rule with a per-cell linear read-out and cross-entropy,
backpropagated through all steps. Values are checked when the configuration is built, and a bad one raises
`UsageError` naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import check_choice
from ..errors import UsageError
from ..optim import OPTIMIZERS, OptimizerConfig

TRAINERS = ("ff", "backprop")
DATASETS = ("mnist", "fashion-mnist")
LR_SCHEDULES = ("hinton", "constant")
GOODNESS = ("sum_of_squares", "mean_of_squares")
OBJECTIVES = ("threshold", "symba")
HIDDEN_STATES = ("last", "all")
FEATURE_NORMS = ("joint", "split")
NEGATIVES = ("random", "hard")


@dataclass(frozen=True)
class NCADataConfig:
    """Data set, split, crop and the subsets drawn for training and evaluation.

    Attributes:
        dataset: `mnist` or `fashion-mnist` (28 x 28 grey images).
        split: `hinton` (last 10,000 training images held out for validation) or `full`.
        limit: keep only the first N samples of every split; None keeps all.
        train_limit: keep only the first N training samples; None keeps all.
        eval_limit: keep N evenly spaced samples of the validation and test splits; None keeps all.
        crop: side of the central square kept of each image; the grid is `crop x crop` cells.
    """

    dataset: str = "mnist"
    split: str = "full"
    limit: int | None = None
    train_limit: int | None = None
    eval_limit: int | None = None
    crop: int = 20


@dataclass(frozen=True)
class NCAModelConfig:
    """The cell state, perception and update rule.

    The state of a cell has 1 pixel channel, `num_classes` label channels (FF only) and as many
    hidden channels as the last block has units.

    Attributes:
        hidden: units of each block of the update rule (1x1 convolutions), first block first.
        label_strength: value of the candidate label's channel in a live cell.
        alive_threshold: a cell belongs to the digit when its pixel is above this value.
        alive_dilation: grow the digit's cells by this many cells (3 x 3 max pooling per cell).
        update_rate: probability that a live cell updates its hidden channels at a step.
        damping: share of a cell's old hidden channels that it keeps when it updates. The new
            hidden state is `damping * old + (1 - damping) * rule output`, the damping that
            Hinton's recurrent FF network applies to its layers. 0 replaces the state.
        goodness_scope: FF only: `image` scores each grid's mean goodness over its live cells in
            the loss; `cell` scores every cell on its own.
        goodness: `sum_of_squares` or `mean_of_squares` of a cell's activities in a block.
        objective: `threshold` (Hinton's loss) or `symba` (softplus of the scaled gap between
            a cell's positive and negative goodness; both trajectories have the same cells).
        symba_alpha: scale of the SymBa objective.
        threshold: theta of the threshold objective; None uses the goodness's default.
        skip_first: FF only: blocks left out of the goodness used for prediction.
        share_belief: FF only: append each block's `sigmoid(goodness - threshold)` of a cell to
            its hidden channels, so that neighbours can read how well the cell matches the label.
        hidden_state: FF only: what a cell writes into its hidden channels. `last` writes the
            last block's length-normalised activity. `all` writes every block's, each
            normalised on its own, so the hidden channels number the sum of the widths.
        feature_norm: FF only: `joint` length-normalises a cell's perception features as one
            vector. `split` normalises the pixel and label channels' features and the hidden
            channels' features separately.
    """

    hidden: tuple[int, ...] = (128, 32)
    label_strength: float = 1.0
    alive_threshold: float = 0.1
    alive_dilation: int = 0
    update_rate: float = 0.5
    damping: float = 0.0
    goodness_scope: str = "image"
    goodness: str = "sum_of_squares"
    objective: str = "threshold"
    symba_alpha: float = 4.0
    threshold: float | None = None
    skip_first: int = 0
    share_belief: bool = False
    hidden_state: str = "last"
    feature_norm: str = "joint"


@dataclass(frozen=True)
class NCANegativesConfig:
    """Choice of the wrong label of each training image's negative trajectory (FF only).

    Attributes:
        kind: `random` draws it uniformly from the wrong labels. `hard` samples it in proportion
            to a softmax over the wrong labels of the automaton's current scores. The scores
            come from one trajectory per label, run without gradients for `score_steps` steps.
        temperature: divides the scores (mean goodness per live cell, summed over the scoring
            steps) before the softmax of `hard`. Lower values pick the top-scoring wrong label
            more often.
        score_steps: steps of the scoring trajectories of `hard`, at most `train.steps`.
    """

    kind: str = "random"
    temperature: float = 1.0
    score_steps: int = 1


@dataclass(frozen=True)
class NCATrainConfig:
    """The training loop.

    Attributes:
        steps: updates of the grid per sample (T).
        eval_first: first step (1-based) whose goodness or logits count for prediction.
        eval_last: last step (1-based, inclusive) that counts; 0 means `steps`.
        epochs: passes of `samples_per_epoch` samples.
        samples_per_epoch: training samples drawn anew (without replacement) each epoch;
            None uses the whole training split.
        batch_size: images per minibatch.
        lr_schedule: `hinton` (constant, then linear decay over the second half) or `constant`.
        eval_every: evaluate every N epochs (always after the last).
        eval_batch_size: images per evaluation batch (FF runs one trajectory per label).
        seed: seeds initialisation, sampling, negative labels and update masks.
        device: `auto`, `cpu`, `cuda` or a device string such as `cuda:1`.
    """

    steps: int = 8
    eval_first: int = 1
    eval_last: int = 0
    epochs: int = 10
    samples_per_epoch: int | None = None
    batch_size: int = 100
    lr_schedule: str = "hinton"
    eval_every: int = 1
    eval_batch_size: int = 500
    seed: int = 17
    device: str = "auto"


@dataclass(frozen=True)
class NCARunConfig:
    """Everything that defines one NCA run."""

    name: str = "nca"
    description: str = ""
    variant: str = "nca"
    trainer: str = "ff"
    data: NCADataConfig = field(default_factory=NCADataConfig)
    model: NCAModelConfig = field(default_factory=NCAModelConfig)
    optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(name="adam", lr=0.001, weight_decay=0.0)
    )
    train: NCATrainConfig = field(default_factory=NCATrainConfig)
    negatives: NCANegativesConfig = field(default_factory=NCANegativesConfig)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def eval_steps(self) -> tuple[int, int]:
        """First and last 1-based step that count for prediction."""
        return self.train.eval_first, self.train.eval_last or self.train.steps


def check_damping(damping: float, key: str = "damping") -> None:
    """Check that `damping`, the share of the old hidden state an updating cell keeps, is in [0, 1).

    Raises:
        UsageError: `damping` is outside [0, 1); the message names `key`.
    """
    if not 0.0 <= damping < 1.0:
        raise UsageError(f"{key} is the share of the old hidden state that an updating cell keeps, so it "
                         f"must be in [0, 1), got {damping}; use 0 to replace the state at every update")


def _at_least(key: str, value: float, minimum: float) -> None:
    if value < minimum:
        raise UsageError(f"{key} must be at least {minimum}, got {value}")


def validate(config: NCARunConfig) -> None:
    """Check every setting of an NCA run.

    Raises:
        UsageError: a value out of range or an unknown choice.
    """
    data, model, train = config.data, config.model, config.train
    check_choice("trainer", config.trainer, TRAINERS)
    check_choice("data.dataset", data.dataset, DATASETS)
    check_choice("data.split", data.split, ("hinton", "full"))
    check_choice("optimizer.name", config.optimizer.name, OPTIMIZERS)
    check_choice("train.lr_schedule", train.lr_schedule, LR_SCHEDULES)
    check_choice("model.goodness", model.goodness, GOODNESS)
    check_choice("model.goodness_scope", model.goodness_scope, ("image", "cell"))
    check_choice("model.objective", model.objective, OBJECTIVES)
    check_choice("model.hidden_state", model.hidden_state, HIDDEN_STATES)
    check_choice("model.feature_norm", model.feature_norm, FEATURE_NORMS)
    check_choice("negatives.kind", config.negatives.kind, NEGATIVES)
    if not 3 <= data.crop <= 28:
        raise UsageError(f"data.crop must be between 3 and 28 cells, got {data.crop}")
    for key in ("limit", "train_limit", "eval_limit"):
        if getattr(data, key) is not None:
            _at_least(f"data.{key}", getattr(data, key), 1)
    if not model.hidden or any(width < 1 for width in model.hidden):
        raise UsageError(f"model.hidden must list positive widths, got {list(model.hidden)}")
    if not 0.0 < model.update_rate <= 1.0:
        raise UsageError(f"model.update_rate must be in (0, 1], got {model.update_rate}")
    check_damping(model.damping, "model.damping")
    _at_least("model.alive_dilation", model.alive_dilation, 0)
    _at_least("model.label_strength", model.label_strength, 0.0)
    if not 0 <= model.skip_first < len(model.hidden):
        raise UsageError(f"model.skip_first = {model.skip_first} must leave one of the "
                         f"{len(model.hidden)} blocks for prediction")
    for key in ("steps", "epochs", "batch_size", "eval_every", "eval_batch_size"):
        _at_least(f"train.{key}", getattr(train, key), 1)
    if train.samples_per_epoch is not None:
        _at_least("train.samples_per_epoch", train.samples_per_epoch, 1)
    first, last = config.eval_steps
    if not 1 <= first <= last <= train.steps:
        raise UsageError(f"train.eval_first = {train.eval_first} and train.eval_last = {train.eval_last} must "
                         f"satisfy 1 <= eval_first <= eval_last <= steps = {train.steps} (eval_last 0 means steps)")
    if config.negatives.temperature <= 0:
        raise UsageError(f"negatives.temperature must be positive, got {config.negatives.temperature}")
    if not 1 <= config.negatives.score_steps <= train.steps:
        raise UsageError(f"negatives.score_steps = {config.negatives.score_steps} must be between 1 and "
                         f"train.steps = {train.steps}")
    _at_least("optimizer.lr", config.optimizer.lr, 0.0)
    _at_least("optimizer.weight_decay", config.optimizer.weight_decay, 0.0)
