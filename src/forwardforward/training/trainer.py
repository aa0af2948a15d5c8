"""The FF training loop: layer-local updates, evaluation, metrics, checkpoints and resume."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import RunConfig
from ..errors import UsageError
from ..architectures import build_ff_network
from ..data.augment import jitter_images
from ..labels import overlay_labels
from ..negatives import (
    AdversarialNegativeGenerator,
    corrupt_images,
    hard_wrong_labels,
    hybrid_images,
    random_wrong_labels,
)
from ..network import FFNetwork
from ..readout import LinearReadout
from .checkpoint import CheckpointParts, ResumableTrainer
from .evaluation import evaluate_split
from .histograms import GoodnessHistograms
from .loop import epoch_order, run_epoch
from .schedules import lr_gain, set_gain

logger = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """Turn `auto`, `cpu`, `cuda` or `cuda:N` into a device.

    Raises:
        UsageError: CUDA was asked for but is not available, or the name is invalid.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"invalid device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} was requested but CUDA is not available; use --device cpu")
    return device


@dataclass
class TrainingData:
    """Splits held on the training device: images `(n, features)`, labels `(n,)` int64.

    `image_shape` is `(channels, height, width)` of one image; None means a flat vector of
    `features` values, which suits fully connected networks only.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    eval_splits: dict[str, tuple[torch.Tensor, torch.Tensor]]
    num_classes: int
    image_shape: tuple[int, int, int] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """`image_shape`, or `(1, 1, features)` when the images have no recorded shape."""
        return self.image_shape or (1, 1, self.train_images.shape[1])


class Trainer(ResumableTrainer):
    """Owns the network, the read-out, their optimizers and the random generators of a run.

    Args:
        config: the run's configuration.
        data: the splits, already on `device`.
        device: where the model and data live.
    """

    def __init__(self, config: RunConfig, data: TrainingData, device: torch.device) -> None:
        self.config = config
        self.data = data
        self.device = device
        self.unsupervised = config.negatives.kind == "hybrid"
        torch.manual_seed(config.train.seed)  # the weights' initialisation
        self.network = self.build_network().to(device)
        for block in self.network.blocks:
            block.configure_optimizer(config.optimizer)
        self.readout: LinearReadout | None = None
        if config.readout.enabled:
            self.readout = LinearReadout(
                self.network.widths, data.num_classes, config.train.skip_first, bias=config.readout.bias
            ).to(device)
            self.readout.configure_optimizer(config.readout.optimizer)
        if self.unsupervised and self.readout is None:
            raise UsageError(
                'negatives.kind = "hybrid" trains without labels, so only the read-out can be '
                "evaluated; set readout.enabled = true"
            )
        if config.negatives.kind == "hard" and config.negatives.hard_source == "readout" and self.readout is None:
            raise UsageError(
                "negatives.hard_source = 'readout' needs the read-out; set readout.enabled = true "
                "or negatives.hard_source = 'goodness'"
            )
        if config.train.compile:
            for block in self.network.blocks:
                block.compile_local_loss()
        self.shuffle_generator = torch.Generator().manual_seed(config.train.seed + 1)
        self.negatives_generator = torch.Generator(device=device).manual_seed(config.train.seed + 2)
        # Goodness of every training sample in the current epoch, binned; reset by train_epoch.
        # The bins are of log10(goodness / threshold), so a network with a non-positive threshold
        # (the "min ssq" objective's negated goodness) records none.
        thresholds = [block.threshold for block in self.network.blocks]
        self.histograms = GoodnessHistograms(thresholds, device) if min(thresholds) > 0 else None
        self.jitter_generator = torch.Generator(device=device).manual_seed(config.train.seed + 3)
        self.negative_images: AdversarialNegativeGenerator | None = None
        negatives = config.negatives
        if negatives.kind == "corrupt" and (negatives.mask_fraction >= 1 or data.image_shape is None):
            raise UsageError(
                "corrupt negatives need negatives.mask_fraction below 1 and a data set with a known image "
                f"shape; got mask_fraction={negatives.mask_fraction}, image shape {data.image_shape}"
            )
        if negatives.kind == "adversarial":
            self.negative_images = AdversarialNegativeGenerator(
                data.train_images.shape[1], negatives.latent_dim, negatives.generator_hidden
            ).to(device)
            self.negative_images.configure_optimizer(negatives.generator_lr)
        self.epoch = 0  # completed epochs

    def build_network(self) -> FFNetwork:
        """Create the network of `config.model`; subclasses build other kinds of network."""
        return build_ff_network(self.config.model, self.data.shape, self.data.num_classes)

    # -- schedule ---------------------------------------------------------------------------

    @property
    def total_epochs(self) -> int:
        """All epochs of the run; the greedy schedule runs `epochs` per layer."""
        per_phase = self.config.train.epochs
        if self.config.train.schedule == "greedy":
            return per_phase * len(self.network.blocks)
        return per_phase

    def active_layer(self, epoch: int) -> int | None:
        """0-based index of the only layer trained in the greedy schedule; None otherwise."""
        if self.config.train.schedule != "greedy":
            return None
        return (epoch - 1) // self.config.train.epochs

    def _apply_gain(self, epoch: int) -> float:
        phase_epoch = epoch
        if self.config.train.schedule == "greedy":
            phase_epoch = (epoch - 1) % self.config.train.epochs + 1
        gain = lr_gain(self.config.train.lr_schedule, phase_epoch, self.config.train.epochs)
        for optimizer, base_lr in self.scheduled_optimizers():
            set_gain(optimizer, base_lr, gain)
        return gain

    def autocast(self) -> torch.autocast:
        """Return the autocast context of `train.precision`, disabled for float32.

        Inside one context autocast reuses each weight's bfloat16 copy. That is correct here
        because every pass of a batch uses the weights from before that batch's updates.
        """
        bfloat16 = self.config.train.precision == "bfloat16"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bfloat16)

    def scheduled_optimizers(self) -> list[tuple[torch.optim.Optimizer, float]]:
        """Every optimizer whose learning rate follows the schedule, with its base rate."""
        pairs = [(block.optimizer, self.config.optimizer.lr) for block in self.network.blocks]
        if self.readout is not None:
            pairs.append((self.readout.optimizer, self.config.readout.optimizer.lr))
        return pairs

    # -- one batch --------------------------------------------------------------------------

    def _negative_labels(
        self, images: torch.Tensor, labels: torch.Tensor, readout_logits: torch.Tensor | None
    ) -> torch.Tensor:
        negatives = self.config.negatives
        classes = self.data.num_classes
        if negatives.kind == "random":
            return random_wrong_labels(labels, classes, self.negatives_generator)
        if negatives.hard_source == "readout":
            scores = readout_logits
        else:
            goodness = self.network.goodness_per_label(images)  # (batch, blocks, classes)
            scores = goodness[:, self.config.train.skip_first :].sum(dim=1)
        return hard_wrong_labels(scores, labels, self.negatives_generator, negatives.temperature)

    def _negative_inputs(
        self, images: torch.Tensor, labels: torch.Tensor, readout_logits: torch.Tensor | None
    ) -> torch.Tensor:
        """Return the `(batch, features)` negative inputs, label overlay included."""
        classes, strength = self.data.num_classes, self.network.label_strength
        negatives = self.config.negatives
        if negatives.kind == "corrupt":
            corrupted = corrupt_images(
                images, self.data.image_shape, negatives.noise_std, negatives.mask_fraction,
                negatives.max_shift, self.negatives_generator,
            )
            return overlay_labels(corrupted, labels, classes, strength)
        if negatives.kind == "adversarial":
            # One generator step towards what the network now accepts, then a fresh sample.
            def score(generated: torch.Tensor) -> torch.Tensor:
                activities = self.network.activities(overlay_labels(generated, labels, classes, strength))
                return sum(
                    F.logsigmoid(block.goodness(a) - block.threshold)
                    for block, a in zip(self.network.blocks, activities)
                )

            self.negative_images.train_step(score, images.shape[0], self.negatives_generator)
            with torch.no_grad():
                generated = self.negative_images.sample(images.shape[0], self.negatives_generator)
            return overlay_labels(generated, labels, classes, strength)
        with torch.no_grad():
            negative_labels = self._negative_labels(images, labels, readout_logits)
        return overlay_labels(images, negative_labels, classes, strength)

    def train_batch(self, images: torch.Tensor, labels: torch.Tensor, active: int | None) -> torch.Tensor:
        """Update every block (or only `active`) and the read-out on one minibatch.

        The goodness of every block that ran is also added to `self.histograms`.

        Args:
            images: `(batch, features)` without labels.
            labels: `(batch,)` true labels.
            active: the only block to train, or None for all.

        Returns:
            `(num_blocks + 2,)` detached values: loss, then positive and negative goodness,
            per block (flattened `(num_blocks, 3)`), then the read-out loss and its number of
            errors on this batch before its update.
        """
        with self.autocast():
            return self._train_batch(images, labels, active)

    def _train_batch(self, images: torch.Tensor, labels: torch.Tensor, active: int | None) -> torch.Tensor:
        num_blocks = len(self.network.blocks)
        stats = torch.zeros(num_blocks, 3, device=self.device)
        readout_stats = torch.zeros(2, device=self.device)
        if self.config.data.jitter:
            images = jitter_images(images, self.data.shape, self.config.data.jitter, self.jitter_generator)

        logits = self.train_readout(images, labels, readout_stats)
        x_pos, x_neg = self.positive_negative_inputs(images, labels, logits)
        h_pos = self.network.normalize(x_pos)
        h_neg = self.network.normalize(x_neg)

        # Each block trains on the normalised, detached output of the block below, computed
        # with the weights from before this batch's updates.
        goodness_pos, goodness_neg = [], []
        for index, block in enumerate(self.network.blocks):
            if active is not None and index > active:
                break
            if active is not None and index < active:
                with torch.no_grad():
                    a_pos, a_neg = block(h_pos), block(h_neg)
            else:
                a_pos, a_neg, metrics = block.train_step(h_pos, h_neg)
                stats[index, 0] = metrics["loss"]
                stats[index, 1] = metrics["goodness_pos"]
                stats[index, 2] = metrics["goodness_neg"]
            if self.histograms is not None:  # the goodness is needed for the histograms only
                goodness_pos.append(block.goodness(a_pos))
                goodness_neg.append(block.goodness(a_neg))
            h_pos, h_neg = self.network.normalize(a_pos), self.network.normalize(a_neg)
        if self.histograms is not None:
            self.histograms.add(goodness_pos, goodness_neg)
        return torch.cat([stats.flatten(), readout_stats])

    def train_readout(
        self, images: torch.Tensor, labels: torch.Tensor, readout_stats: torch.Tensor
    ) -> torch.Tensor | None:
        """Take one read-out step on the neutral-label pass (the bare image when unsupervised).

        Writes the loss and the number of errors into `readout_stats` `(2,)` and returns the
        logits `(batch, num_classes)` from before the step, which also pick hard negatives;
        None without a read-out.
        """
        if self.readout is None:
            return None
        with torch.no_grad():
            activities = self.readout_activities(images)
        logits, loss = self.readout.train_step(activities, labels)
        readout_stats[0] = loss
        readout_stats[1] = (logits.argmax(dim=1) != labels).sum()
        return logits

    def readout_activities(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Activities `(batch, units_l)` that the read-out sees: of the neutral-label pass, or of
        the bare image when unsupervised."""
        if self.unsupervised:
            return self.network.activities(images)
        return self.network.neutral_activities(images)

    def positive_negative_inputs(
        self, images: torch.Tensor, labels: torch.Tensor, readout_logits: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Build the positive and negative inputs `(batch, features)` of one batch.

        Supervised: the image with its true label, and with a wrong label. Unsupervised
        (`negatives.kind = "hybrid"`): the bare image, and a hybrid of two images. The returned
        tensors carry no graph; the `adversarial` kind trains its generator here first.
        """
        if self.unsupervised:
            with torch.no_grad():
                negatives = hybrid_images(
                    images, self.data.shape, self.config.negatives.blur_passes, self.negatives_generator
                )
            return images, negatives
        classes, strength = self.data.num_classes, self.network.label_strength
        positives = overlay_labels(images, labels, classes, strength)
        return positives, self._negative_inputs(images, labels, readout_logits).detach()

    # -- one epoch --------------------------------------------------------------------------

    def train_epoch(self, progress: bool = True) -> dict:
        """Run the next epoch and return its training metrics.

        Afterwards `self.histograms` contains the goodness of this epoch's training samples.

        Raises:
            TrainingError: a loss or goodness became NaN or infinite.
        """
        epoch = self.epoch + 1
        train_cfg = self.config.train
        gain = self._apply_gain(epoch)
        active = self.active_layer(epoch)
        images, labels = self.data.train_images, self.data.train_labels
        n = images.shape[0]
        order = epoch_order(n, train_cfg.shuffle, self.shuffle_generator, self.device)

        self.network.train()
        if self.histograms is not None:
            self.histograms.reset()
        sums, num_batches, elapsed = run_epoch(
            lambda x, y: self.train_batch(x, y, active), images, labels, train_cfg.batch_size, order,
            epoch, self.total_epochs, progress, progress_loss=self.progress_loss,
        )

        record: dict = {"epoch": epoch, "lr_gain": gain}
        if active is not None:
            record["active_layer"] = active + 1
        record.update(self.epoch_metrics(sums, num_batches, n, active))
        record["epoch_time_s"] = elapsed
        record["samples_per_s"] = n / elapsed
        self.epoch = epoch
        return record

    def progress_loss(self, sums: torch.Tensor, batches: int) -> float:
        """Summed mean layer loss over the first `batches` batches, for the progress bar."""
        return (sums[: 3 * len(self.network.blocks) : 3] / batches).sum().item()

    def epoch_metrics(self, sums: torch.Tensor, num_batches: int, n: int, active: int | None) -> dict:
        """Turn the epoch's sum of `train_batch` values into named training metrics."""
        means = (sums / num_batches).tolist()
        record: dict = {}
        for i in range(len(self.network.blocks)):
            if active is not None and i != active:
                continue  # frozen in this greedy phase: no loss to report
            record[f"layer{i + 1}/loss"] = means[3 * i]
            record[f"layer{i + 1}/goodness_pos"] = means[3 * i + 1]
            record[f"layer{i + 1}/goodness_neg"] = means[3 * i + 2]
        if self.readout is not None:
            record["train/readout_loss"] = means[-2]
            record["train/error_softmax"] = 100.0 * sums[-1].item() / n
        return record

    def evaluate(self) -> dict:
        """Error rates in percent on every evaluation split, with keys like `test/error_goodness`."""
        result = {}
        for name, (images, labels) in self.data.eval_splits.items():
            with self.autocast():
                errors = evaluate_split(
                    self.network, self.readout, images, labels,
                    skip_first=self.config.train.skip_first,
                    batch_size=self.config.train.eval_batch_size,
                    labelled_input=not self.unsupervised,
                )
            result.update({f"{name}/{key}": value for key, value in errors.items()})
        return result

    # -- state ------------------------------------------------------------------------------

    def checkpoint_parts(self) -> CheckpointParts:
        """Return the network, optimizers, read-out, negative generator and RNGs, by checkpoint key."""
        negative_images = self.negative_images
        return CheckpointParts(
            parts={
                "network": self.network,
                "block_optimizers": [block.optimizer for block in self.network.blocks],
                "readout": self.readout,
                "readout_optimizer": None if self.readout is None else self.readout.optimizer,
                "negative_images": negative_images,
                "negative_images_optimizer": None if negative_images is None else negative_images.optimizer,
            },
            generators={
                "shuffle_rng": self.shuffle_generator,
                "negatives_rng": self.negatives_generator,
                "jitter_rng": self.jitter_generator,
            },
            optional_generators=("jitter_rng",),  # absent in checkpoints written before jitter existed
        )
