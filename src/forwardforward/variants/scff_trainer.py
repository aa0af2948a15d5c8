"""Training loop of Self-Contrastive FF, run through `forwardforward.training.train`.

`SCFFTrainer` has the interface that the core's run directories use (`total_epochs`,
`train_epoch`, `evaluate`, `state_dict`, `load_state_dict`), so an SCFF run gets the same
config file, metrics log, atomic checkpoints, resume and CLI as an FF run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import load_dataset
from ..data.augment import random_flip, random_shift
from ..errors import UsageError
from ..negatives import self_contrastive_pairs
from ..normalization import standardize
from ..optim import OptimizerConfig
from ..training.checkpoint import CheckpointParts, ResumableTrainer, checkpoint_must_fit
from ..training.loop import epoch_order, run_epoch
from ..training.schedules import exponential_gain, set_gain
from .scff import SCFFNetwork, build_conv_blocks, build_mlp_blocks
from .scff_config import SCFFRunConfig
from .scff_probe import extract_features, probe_error, train_probe
from .scff_recurrent import BidirectionalSCFF



@dataclass
class SCFFData:
    """Splits on the training device: images `(n, C * H * W)` in [0, 1], labels `(n,)`."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    eval_splits: dict[str, tuple[torch.Tensor, torch.Tensor]]
    num_classes: int
    image_shape: tuple[int, int, int]


def load_scff_data(config: SCFFRunConfig, data_dir: str | None, device: torch.device) -> SCFFData:
    """Load the configured data set and move it to `device`.

    Raises:
        UsageError: a `data_dir` that is not a folder.
        DataError: missing or corrupt data files.
    """
    data = config.data
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise UsageError(f"data folder not found: {data_dir}; pass --data-dir a folder whose sub-folder "
                         f"{data.dataset}/ contains the data files")
    splits = load_dataset(data.dataset, data_dir=data_dir, split=data.split, limit=data.limit)
    eval_splits = {}
    if splits.valid is not None:
        eval_splits["valid"] = (splits.valid.images.to(device), splits.valid.labels.to(device))
    eval_splits["test"] = (splits.test.images.to(device), splits.test.labels.to(device))
    return SCFFData(
        splits.train.images.to(device), splits.train.labels.to(device), eval_splits,
        splits.num_classes, tuple(splits.image_shape),
    )


class SCFFTrainer(ResumableTrainer):
    """Owns an SCFF network, its per-layer optimizers and the random generators of a run.

    Args:
        config: the run's configuration.
        data: the splits, already on `device`.
        device: where the model and data live.

    Raises:
        UsageError: a layer that does not fit the data (for example conv layers on too small
            an image).
    """

    def __init__(self, config: SCFFRunConfig, data: SCFFData, device: torch.device) -> None:
        self.config = config
        self.data = data
        self.device = device
        model = config.model
        channels, height, width = data.image_shape
        torch.manual_seed(config.train.seed)  # the weights' initialisation
        if model.kind == "mlp":
            self.network: torch.nn.Module = SCFFNetwork(build_mlp_blocks(channels * height * width, model))
        elif model.kind == "conv":
            self.network = SCFFNetwork(build_conv_blocks(data.image_shape, model))
        else:
            self.network = BidirectionalSCFF(channels * width, model.hidden[0], model)
        self.network.to(device)
        opt = config.optimizer
        for index, block in enumerate(self.network.blocks):
            block.configure_optimizer(OptimizerConfig(
                name="adamw", lr=opt.lr[index], momentum=0.9, weight_decay=opt.weight_decay[index]
            ))
        self.steps = [0] * len(self.network.blocks)  # minibatches each layer has trained on
        self.shuffle_generator = torch.Generator().manual_seed(config.train.seed + 1)
        self.pair_generator = torch.Generator().manual_seed(config.train.seed + 2)
        self.augment_generator = torch.Generator(device=device).manual_seed(config.train.seed + 3)
        self.epoch = 0

    # -- schedule ---------------------------------------------------------------------------

    @property
    def total_epochs(self) -> int:
        """All epochs of the run: the sum over layers (greedy) or `train.epochs`."""
        return self.config.total_epochs()

    def active_layer(self, epoch: int) -> int | None:
        """0-based index of the only layer trained in 1-based `epoch` (greedy); else None."""
        if self.config.train.schedule != "greedy":
            return None
        end = 0
        for index, epochs in enumerate(self.config.epochs_per_layer()):
            end += epochs
            if epoch <= end:
                return index
        return len(self.network.blocks) - 1

    # -- inputs -----------------------------------------------------------------------------

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        """Draw one augmented view of `(batch, C, H, W)` images."""
        data = self.config.data
        out = random_shift(images, data.max_shift, self.augment_generator)
        return random_flip(out, self.augment_generator) if data.flip else out

    def _format(self, images: torch.Tensor) -> torch.Tensor:
        """Standardise `(batch, C, H, W)` views per sample and shape them for the model."""
        kind = self.config.model.kind
        if kind == "mlp":
            return standardize(images.flatten(1))  # (batch, C * H * W)
        if kind == "conv":
            return standardize(images)  # (batch, C, H, W)
        rows = images.permute(0, 2, 1, 3).flatten(2)  # (batch, H steps, C * W features)
        return standardize(rows)

    def _pair_dim(self) -> int:
        return 2 if self.config.model.kind == "recurrent" else 1

    def augment_mode(self, active: int | None) -> str:
        """Return the augmentation mode used while 0-based layer `active` trains (None: all layers train)."""
        data = self.config.data
        return data.layer_augment[active] if data.layer_augment and active is not None else data.augment

    def make_pairs(self, images: torch.Tensor, mode: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Build the positive and negative pairs of a `(batch, C * H * W)` training batch.

        `mode` is `none`, `same` or `independent`, and None uses `data.augment`.
        """
        views = images.view(-1, *self.data.image_shape)
        mode = mode or self.config.data.augment
        if mode == "none":
            first = second = self._format(views)
        elif mode == "same":
            first = second = self._format(self._augment(views))
        else:
            first, second = self._format(self._augment(views)), self._format(self._augment(views))
        return self_contrastive_pairs(
            first, second, self.config.model.num_negatives, self.pair_generator, dim=self._pair_dim()
        )

    def eval_inputs(self, images: torch.Tensor) -> torch.Tensor:
        """Positive pairs (each sample with itself, no augmentation) of `(n, C * H * W)` images."""
        x = self._format(images.view(-1, *self.data.image_shape))
        return torch.cat([x, x], dim=self._pair_dim())

    # -- one batch --------------------------------------------------------------------------

    def _step_block(self, index: int, h_pos: torch.Tensor, h_neg: torch.Tensor):
        opt = self.config.optimizer
        block = self.network.blocks[index]
        gain = exponential_gain(self.steps[index], opt.lr_decay[index], opt.decay_every[index])
        set_gain(block.optimizer, opt.lr[index], gain)
        result = block.train_step(h_pos, h_neg)
        self.steps[index] += 1
        return result

    def train_batch(self, images: torch.Tensor, active: int | None) -> torch.Tensor:
        """Update every layer (or only `active`) on one minibatch.

        Returns:
            `(num_layers * 3,)` detached values: loss, positive and negative goodness per layer
            (zeros for layers that did not train).
        """
        blocks = self.network.blocks
        stats = torch.zeros(len(blocks), 3, device=self.device)
        x_pos, x_neg = self.make_pairs(images, self.augment_mode(active))
        recurrent = self.config.model.kind == "recurrent"
        h_pos, h_neg = x_pos, x_neg
        for index, block in enumerate(blocks):
            if active is not None and index > active:
                break
            if active is not None and index < active:
                if not recurrent:
                    with torch.no_grad():
                        h_pos, h_neg = block(h_pos), block(h_neg)
                continue
            # Every recurrent direction reads the input pairs; stacked layers read the layer below.
            a_pos, a_neg, metrics = self._step_block(index, x_pos if recurrent else h_pos, x_neg if recurrent else h_neg)
            stats[index] = torch.stack([metrics["loss"], metrics["goodness_pos"], metrics["goodness_neg"]])
            if not recurrent:
                h_pos, h_neg = a_pos, a_neg
        return stats.flatten()

    # -- one epoch --------------------------------------------------------------------------

    def train_epoch(self, progress: bool = True) -> dict:
        """Run the next epoch and return its training metrics.

        Raises:
            TrainingError: a loss or goodness became NaN or infinite.
        """
        epoch = self.epoch + 1
        batch_size = self.config.train.batch_size
        active = self.active_layer(epoch)
        images = self.data.train_images
        n = images.shape[0]
        order = epoch_order(n, True, self.shuffle_generator, self.device)
        # A last batch too small for distinct partners is dropped.
        num_batches = n // batch_size if n % batch_size <= self.config.model.num_negatives else math.ceil(n / batch_size)
        self.network.train()
        sums, num_batches, elapsed = run_epoch(
            lambda x, _: self.train_batch(x, active), images, self.data.train_labels, batch_size, order,
            epoch, self.total_epochs, progress, num_batches=num_batches,
            progress_loss=lambda sums, batches: sums[::3].sum().item() / batches,
        )
        means = (sums / max(1, num_batches)).tolist()
        record: dict = {"epoch": epoch}
        if active is not None:
            record["active_layer"] = active + 1
        for i in range(len(self.network.blocks)):
            if active is not None and i != active:
                continue
            record[f"layer{i + 1}/loss"] = means[3 * i]
            record[f"layer{i + 1}/goodness_pos"] = means[3 * i + 1]
            record[f"layer{i + 1}/goodness_neg"] = means[3 * i + 2]
            record[f"layer{i + 1}/lr"] = self.network.blocks[i].optimizer.param_groups[0]["lr"]
        record["epoch_time_s"] = elapsed
        record["samples_per_s"] = n / elapsed
        self.epoch = epoch
        return record

    # -- evaluation -------------------------------------------------------------------------

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Frozen probe features `(n, features)` of `(n, C * H * W)` images."""
        self.network.eval()
        probe = self.config.probe
        return extract_features(
            self.network.activities, self.eval_inputs(images), [layer - 1 for layer in probe.layers],
            probe.pool_size, self.config.train.eval_batch_size,
        )

    def evaluate(self) -> dict:
        """Train the linear probe on frozen training features; error rates in percent.

        Returns:
            `train/error_probe` and, for each evaluation split, `<split>/error_probe`.
        """
        probe_cfg = self.config.probe
        train_features = self.features(self.data.train_images)
        probe = train_probe(
            train_features, self.data.train_labels, self.data.num_classes, probe_cfg.epochs,
            probe_cfg.batch_size, probe_cfg.lr, probe_cfg.dropout, seed=self.config.train.seed + 4,
        )
        result = {"train/error_probe": probe_error(probe, train_features, self.data.train_labels)}
        del train_features
        for name, (images, labels) in self.data.eval_splits.items():
            result[f"{name}/error_probe"] = probe_error(probe, self.features(images), labels)
        return result

    # -- state ------------------------------------------------------------------------------

    def checkpoint_parts(self) -> CheckpointParts:
        """Return the weights, optimizers and random generators by checkpoint key (the step counts aside)."""
        return CheckpointParts(
            parts={"network": self.network, "block_optimizers": [block.optimizer for block in self.network.blocks]},
            generators={"shuffle_rng": self.shuffle_generator, "pair_rng": self.pair_generator,
                        "augment_rng": self.augment_generator},
        )

    def state_dict(self) -> dict:
        """Return everything needed to continue the run bit for bit: weights, optimizers, step counts, RNGs."""
        return {**super().state_dict(), "steps": list(self.steps)}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned.

        Raises:
            UsageError: the state does not fit this run's network.
        """
        # Read the step counts first, so that a bad entry raises before any part is restored.
        with checkpoint_must_fit():
            steps = [int(s) for s in state["steps"]]
        super().load_state_dict(state)
        self.steps = steps


def build_scff_trainer(config: SCFFRunConfig, data_dir: str | None, device: torch.device) -> SCFFTrainer:
    """Load the data of an SCFF run and build its trainer (the hook used by `training.train`)."""
    return SCFFTrainer(config, load_scff_data(config, data_dir, device), device)
