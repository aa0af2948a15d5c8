"""The FF training loop: layer-local updates, evaluation, metrics, checkpoints and resume."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..config import RunConfig
from ..errors import TrainingError, UsageError
from ..labels import overlay_labels, overlay_neutral
from ..negatives import AdversarialNegativeGenerator, corrupt_images, hard_wrong_labels, random_wrong_labels
from ..network import FFNetwork
from ..readout import LinearReadout
from .evaluation import evaluate_split
from .schedules import lr_gain, set_gain

logger = logging.getLogger(__name__)

# How often (in batches) the progress bar reads the loss back from the device.
_PROGRESS_EVERY = 50


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
    """Splits held on the training device: images `(n, features)`, labels `(n,)` int64."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    eval_splits: dict[str, tuple[torch.Tensor, torch.Tensor]]
    num_classes: int
    image_shape: tuple[int, int, int] | None = None  # (channels, height, width); needed by `corrupt` negatives


class Trainer:
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
        model = config.model
        torch.manual_seed(config.train.seed)  # the weights' initialisation
        self.network = FFNetwork.fully_connected(
            data.train_images.shape[1],
            model.hidden,
            num_classes=data.num_classes,
            label_strength=model.label_strength,
            init=model.init,
            goodness=model.goodness,
            threshold=model.threshold,
            objective=model.objective,
            symba_alpha=model.symba_alpha,
            peer_strength=model.peer_strength,
            peer_momentum=model.peer_momentum,
        ).to(device)
        for block in self.network.blocks:
            block.configure_optimizer(config.optimizer)
        self.readout: LinearReadout | None = None
        if config.readout.enabled:
            self.readout = LinearReadout(
                self.network.widths, data.num_classes, config.train.skip_first, bias=config.readout.bias
            ).to(device)
            self.readout.configure_optimizer(config.readout.optimizer)
        if config.negatives.kind == "hard" and config.negatives.hard_source == "readout" and self.readout is None:
            raise UsageError(
                "negatives.hard_source = 'readout' needs the read-out; set readout.enabled = true "
                "or negatives.hard_source = 'goodness'"
            )
        self.shuffle_generator = torch.Generator().manual_seed(config.train.seed + 1)
        self.negatives_generator = torch.Generator(device=device).manual_seed(config.train.seed + 2)
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
        for block in self.network.blocks:
            set_gain(block.optimizer, self.config.optimizer.lr, gain)
        if self.readout is not None:
            set_gain(self.readout.optimizer, self.config.readout.optimizer.lr, gain)
        return gain

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

        Args:
            images: `(batch, features)` without labels.
            labels: `(batch,)` true labels.
            active: the only block to train, or None for all.

        Returns:
            `(num_blocks + 2,)` detached values: loss, then positive and negative goodness,
            per block (flattened `(num_blocks, 3)`), then the read-out loss and its number of
            errors on this batch before its update.
        """
        classes, strength = self.data.num_classes, self.network.label_strength
        num_blocks = len(self.network.blocks)
        stats = torch.zeros(num_blocks, 3, device=self.device)
        readout_stats = torch.zeros(2, device=self.device)

        # The neutral-label pass feeds the read-out, whose logits also pick hard negatives.
        logits = None
        if self.readout is not None:
            with torch.no_grad():
                neutral = self.network.activities(overlay_neutral(images, classes, strength))
            logits, loss = self.readout.train_step(neutral, labels)
            readout_stats[0] = loss
            readout_stats[1] = (logits.argmax(dim=1) != labels).sum()

        h_pos = self.network.normalize(overlay_labels(images, labels, classes, strength))
        h_neg = self.network.normalize(self._negative_inputs(images, labels, logits))

        # Each block trains on the normalised, detached output of the block below, computed
        # with the weights from before this batch's updates.
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
            h_pos, h_neg = self.network.normalize(a_pos), self.network.normalize(a_neg)
        return torch.cat([stats.flatten(), readout_stats])

    # -- one epoch --------------------------------------------------------------------------

    def train_epoch(self, progress: bool = True) -> dict:
        """Run the next epoch and return its training metrics.

        Raises:
            TrainingError: a loss or goodness became NaN or infinite.
        """
        epoch = self.epoch + 1
        train_cfg = self.config.train
        gain = self._apply_gain(epoch)
        active = self.active_layer(epoch)
        images, labels = self.data.train_images, self.data.train_labels
        n = images.shape[0]
        if train_cfg.shuffle:
            order = torch.randperm(n, generator=self.shuffle_generator).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        num_batches = math.ceil(n / train_cfg.batch_size)

        self.network.train()
        sums = None
        start = time.perf_counter()
        bar = tqdm(
            total=num_batches, desc=f"epoch {epoch}/{self.total_epochs}", unit="batch",
            disable=not progress, leave=False, dynamic_ncols=True,
        )
        for b in range(num_batches):
            index = order[b * train_cfg.batch_size : (b + 1) * train_cfg.batch_size]
            values = self.train_batch(images[index], labels[index], active)
            sums = values if sums is None else sums + values
            if progress and ((b + 1) % _PROGRESS_EVERY == 0 or b + 1 == num_batches):
                self._check_finite(sums, epoch)
                layer_losses = sums[: 3 * len(self.network.blocks) : 3] / (b + 1)
                elapsed = time.perf_counter() - start
                bar.set_postfix(
                    loss=f"{layer_losses.sum().item():.4f}",
                    samples_s=f"{min(n, (b + 1) * train_cfg.batch_size) / elapsed:.0f}",
                )
            bar.update(1)
        bar.close()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elapsed = time.perf_counter() - start
        self._check_finite(sums, epoch)

        means = (sums / num_batches).tolist()
        record: dict = {"epoch": epoch, "lr_gain": gain}
        if active is not None:
            record["active_layer"] = active + 1
        for i in range(len(self.network.blocks)):
            if active is not None and i != active:
                continue  # frozen in this greedy phase: no loss to report
            record[f"layer{i + 1}/loss"] = means[3 * i]
            record[f"layer{i + 1}/goodness_pos"] = means[3 * i + 1]
            record[f"layer{i + 1}/goodness_neg"] = means[3 * i + 2]
        if self.readout is not None:
            record["train/readout_loss"] = means[-2]
            record["train/error_softmax"] = 100.0 * sums[-1].item() / n
        record["epoch_time_s"] = elapsed
        record["samples_per_s"] = n / elapsed
        self.epoch = epoch
        return record

    def _check_finite(self, sums: torch.Tensor, epoch: int) -> None:
        if not bool(torch.isfinite(sums).all()):
            raise TrainingError(
                f"a loss or goodness became NaN or infinite in epoch {epoch}; training stopped and "
                "the checkpoint of the last good epoch was kept. Lower optimizer.lr or check the data"
            )

    def evaluate(self) -> dict:
        """Error rates in percent on every evaluation split, with keys like `test/error_goodness`."""
        result = {}
        for name, (images, labels) in self.data.eval_splits.items():
            errors = evaluate_split(
                self.network, self.readout, images, labels,
                skip_first=self.config.train.skip_first,
                batch_size=self.config.train.eval_batch_size,
            )
            result.update({f"{name}/{key}": value for key, value in errors.items()})
        return result

    # -- state ------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything needed to continue the run bit for bit: weights, buffers, optimizers, RNGs."""
        return {
            "epoch": self.epoch,
            "network": self.network.state_dict(),
            "block_optimizers": [block.optimizer.state_dict() for block in self.network.blocks],
            "readout": None if self.readout is None else self.readout.state_dict(),
            "readout_optimizer": None if self.readout is None else self.readout.optimizer.state_dict(),
            "shuffle_rng": self.shuffle_generator.get_state(),
            "negatives_rng": self.negatives_generator.get_state(),
            "negative_images": None if self.negative_images is None else self.negative_images.state_dict(),
            "negative_images_optimizer": (
                None if self.negative_images is None else self.negative_images.optimizer.state_dict()
            ),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned.

        Raises:
            UsageError: the state does not fit this run's network.
        """
        try:
            self.network.load_state_dict(state["network"])
            for block, opt_state in zip(self.network.blocks, state["block_optimizers"], strict=True):
                block.optimizer.load_state_dict(opt_state)
            if self.readout is not None:
                self.readout.load_state_dict(state["readout"])
                self.readout.optimizer.load_state_dict(state["readout_optimizer"])
            if self.negative_images is not None:
                self.negative_images.load_state_dict(state["negative_images"])
                self.negative_images.optimizer.load_state_dict(state["negative_images_optimizer"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise UsageError(f"the checkpoint does not match this run's configuration: {exc}".splitlines()[0]) from None
        self.shuffle_generator.set_state(state["shuffle_rng"].cpu())
        self.negatives_generator.set_state(state["negatives_rng"].cpu())
        self.epoch = int(state["epoch"])
