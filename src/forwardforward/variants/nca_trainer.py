"""Training loop of the cellular automaton, run through `forwardforward.training.train`.

`NCATrainer` has the interface that run directories use (`epoch`, `total_epochs`,
`train_epoch`, `evaluate`, `state_dict`, `load_state_dict`), so an NCA run gets the same config
file, metrics log, atomic checkpoints, resume and CLI as an FF run. `trainer = "ff"` trains the
FF automaton step by step; `trainer = "backprop"` trains its baseline through all steps.
"""

from __future__ import annotations

import torch

from ..baselines.nca_bptt import BPTTCellularAutomaton
from ..errors import UsageError
from ..negatives import hard_wrong_labels, random_wrong_labels
from ..optim import build_optimizer
from ..training.checkpoint import CheckpointParts, ResumableTrainer
from ..training.evaluation import evaluate_splits
from ..training.loop import run_epoch
from ..training.run import load_training_data
from ..training.schedules import lr_gain, set_gain
from ..training.trainer import TrainingData
from .nca import FFCellularAutomaton, Trajectory, alive_cells, crop_center, live_indices, update_mask
from .nca_config import NCARunConfig

# The prediction method in metric keys: `test/error_goodness` for FF, `test/error_softmax` for
# the baseline, as in the core's runs.
METHODS = {"ff": "goodness", "backprop": "softmax"}


class NCATrainer(ResumableTrainer):
    """Owns the automaton, its optimizers and the random generators of a run.

    Args:
        config: the run's configuration.
        data: the splits, already on `device`, with images of shape `(1, H, W)`.
        device: where the model and data live.

    Raises:
        UsageError: images with more than one channel, or a crop larger than the images.
    """

    def __init__(self, config: NCARunConfig, data: TrainingData, device: torch.device) -> None:
        if data.shape[0] != 1:
            raise UsageError(f"the cellular automaton needs grey images, got image shape {data.shape}")
        crop_center(data.train_images[:1], data.shape, config.data.crop)  # checks the crop
        self.config = config
        self.data = data
        self.device = device
        model, seed = config.model, config.train.seed
        torch.manual_seed(seed)  # the weights' initialisation
        if config.trainer == "ff":
            self.model: torch.nn.Module = FFCellularAutomaton(
                data.num_classes, model.hidden, model.label_strength, model.goodness, model.objective,
                model.symba_alpha, model.threshold, model.skip_first, model.share_belief, model.hidden_state,
                model.feature_norm, model.damping,
            )
            self.optimizers = [block.configure_optimizer(config.optimizer) for block in self.model.blocks]
        else:
            self.model = BPTTCellularAutomaton(data.num_classes, model.hidden, model.damping)
            self.optimizers = [build_optimizer(self.model, config.optimizer)]
        self.model.to(device)
        self.sample_generator = torch.Generator().manual_seed(seed + 1)
        self.label_generator = torch.Generator(device=device).manual_seed(seed + 2)
        self.mask_generator = torch.Generator(device=device).manual_seed(seed + 3)
        self.epoch = 0

    @property
    def total_epochs(self) -> int:
        """Epochs of the run."""
        return self.config.train.epochs

    @property
    def method(self) -> str:
        """`goodness` (FF) or `softmax` (baseline): the prediction method in metric keys."""
        return METHODS[self.config.trainer]

    def grids(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop `(batch, 784)` images to `(batch, 1, crop, crop)` grids and mark their live cells."""
        grids = crop_center(images, self.data.shape, self.config.data.crop)
        return grids, alive_cells(grids, self.config.model.alive_threshold, self.config.model.alive_dilation)

    # -- training ---------------------------------------------------------------------------

    def train_batch(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Train on one minibatch of `(batch, 784)` images and `(batch,)` labels.

        Returns:
            FF: `(blocks * 3,)` loss, positive and negative goodness per block, averaged over
            steps. Baseline: `(1,)` the cross-entropy.
        """
        grids, alive = self.grids(images)
        steps, rate = self.config.train.steps, self.config.model.update_rate
        if self.config.trainer == "backprop":
            loss = self.model.loss(grids, alive, labels, steps, rate, self.mask_generator)
            optimizer = self.optimizers[0]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return loss.detach().unsqueeze(0)

        cells = live_indices(alive)
        wrong = self.wrong_labels(grids, alive, labels)
        state_pos = self.model.grid.initial_state(grids, alive, labels)
        state_neg = self.model.grid.initial_state(grids, alive, wrong)
        sums = torch.zeros(len(self.model.blocks), 3, device=self.device)
        for _ in range(steps):
            mask = update_mask(alive, rate, self.mask_generator)
            state_pos, state_neg, stats = self.model.train_step(
                state_pos, state_neg, cells, mask, self.config.model.goodness_scope == "image"
            )
            sums += stats
        return (sums / steps).flatten()

    def wrong_labels(self, grids: torch.Tensor, alive: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Choose the `(batch,)` wrong labels of the negative trajectories, as `negatives.kind` sets.

        `hard` scores every label with one trajectory per label, without gradients, for
        `negatives.score_steps` steps. A label's score is its mean goodness per live cell,
        summed over those steps. The update masks of that pass come from the label generator,
        so the masks of the training trajectories stay the same as with `random`.

        Args:
            grids: `(batch, 1, H, W)`.
            alive: `(batch, H, W)` bool.
            labels: `(batch,)` true labels.
        """
        negatives = self.config.negatives
        if negatives.kind == "random":
            return random_wrong_labels(labels, self.data.num_classes, self.label_generator)
        result = self.model.trajectory(
            grids, alive, negatives.score_steps, self.config.model.update_rate, self.label_generator
        )
        live = alive.sum((1, 2)).clamp(min=1).to(result.scores.dtype)  # (batch,)
        scores = result.scores.sum(0) / live[:, None]  # (batch, num_classes)
        return hard_wrong_labels(scores, labels, self.label_generator, negatives.temperature)

    def train_epoch(self, progress: bool = True) -> dict:
        """Run the next epoch on `train.samples_per_epoch` freshly drawn samples.

        Raises:
            TrainingError: a loss or goodness became NaN or infinite.
        """
        epoch = self.epoch + 1
        train = self.config.train
        gain = lr_gain(train.lr_schedule, epoch, self.total_epochs)
        for optimizer in self.optimizers:
            set_gain(optimizer, self.config.optimizer.lr, gain)
        images, labels = self.data.train_images, self.data.train_labels
        count = min(train.samples_per_epoch or images.shape[0], images.shape[0])
        subset = torch.randperm(images.shape[0], generator=self.sample_generator)[:count].to(self.device)
        self.model.train()
        # run_epoch batches all the images it is given, so it gets the epoch's subset, in order.
        order = torch.arange(count, device=self.device)
        sums, num_batches, elapsed = run_epoch(
            self.train_batch, images[subset], labels[subset], train.batch_size, order, epoch, self.total_epochs,
            progress,
        )
        means = (sums / num_batches).tolist()
        record: dict = {"epoch": epoch}
        if self.config.trainer == "backprop":
            record["train/loss"] = means[0]
        else:
            for i in range(len(self.model.blocks)):
                record[f"layer{i + 1}/loss"] = means[3 * i]
                record[f"layer{i + 1}/goodness_pos"] = means[3 * i + 1]
                record[f"layer{i + 1}/goodness_neg"] = means[3 * i + 2]
        record["lr"] = self.config.optimizer.lr * gain
        record["train_samples"] = count
        record["epoch_time_s"] = elapsed
        record["samples_per_s"] = count / elapsed
        self.epoch = epoch
        return record

    # -- evaluation -------------------------------------------------------------------------

    def trajectory(self, images: torch.Tensor, generator: torch.Generator | None = None) -> Trajectory:
        """Per-step image and cell scores of every label for `(batch, 784)` images."""
        self.model.eval()
        grids, alive = self.grids(images)
        return self.model.trajectory(grids, alive, self.config.train.steps, self.config.model.update_rate, generator)

    def evaluate_split(self, images: torch.Tensor, labels: torch.Tensor) -> dict:
        """Image error, cell accuracy and cell agreement of one split, overall and per step.

        The image prediction is the argmax over labels of the scores summed over the steps
        `train.eval_first` to `train.eval_last`. Each cell's prediction is the argmax of its own
        scores over the same steps. `cell_accuracy` is the share of live cells whose prediction
        is the true label, `cell_agreement` the share that agrees with their image's prediction.
        Per step `t` the same numbers use step t's scores alone. `error_from_step<t>` is the
        image error of the scores summed over steps t to `train.steps`, which shows what
        leaving out the early steps (`train.eval_first = t`) would give.

        Returns:
            Percentages keyed `error_<method>`, `cell_accuracy`, `cell_agreement`,
            `error_step<t>`, `error_from_step<t>` and `cell_accuracy_step<t>`.
        """
        first, last = self.config.eval_steps
        steps = self.config.train.steps
        generator = torch.Generator(device=self.device).manual_seed(self.config.train.seed + 4)
        wrong = torch.zeros((), device=self.device)
        step_wrong = torch.zeros(steps, device=self.device)
        suffix_wrong = torch.zeros(steps, device=self.device)
        cell_right = torch.zeros((), device=self.device)
        cell_agree = torch.zeros((), device=self.device)
        step_cell_right = torch.zeros(steps, device=self.device)
        live = torch.zeros((), device=self.device)
        batch_size = self.config.train.eval_batch_size
        for start in range(0, images.shape[0], batch_size):
            batch_labels = labels[start : start + batch_size]
            result = self.trajectory(images[start : start + batch_size], generator)
            alive = result.alive  # (batch, H, W)
            predicted = result.scores[first - 1 : last].sum(0).argmax(1)  # (batch,)
            cells = result.cell_scores[first - 1 : last].sum(0).argmax(1)  # (batch, H, W)
            step_cells = result.cell_scores.argmax(2)  # (steps, batch, H, W)
            truth = batch_labels[:, None, None]
            wrong += (predicted != batch_labels).sum()
            step_wrong += (result.scores.argmax(2) != batch_labels).sum(1)
            suffix = result.scores.flip(0).cumsum(0).flip(0)  # (steps, batch, classes): row t sums steps t to the last
            suffix_wrong += (suffix.argmax(2) != batch_labels).sum(1)
            cell_right += ((cells == truth) & alive).sum()
            cell_agree += ((cells == predicted[:, None, None]) & alive).sum()
            step_cell_right += ((step_cells == truth) & alive).sum((1, 2, 3))
            live += alive.sum()
        n = images.shape[0]
        live = live.clamp(min=1)  # a split whose digits have no live cell reports 0 % cell accuracy
        record = {
            f"error_{self.method}": 100.0 * wrong.item() / n,
            "cell_accuracy": 100.0 * cell_right.item() / live.item(),
            "cell_agreement": 100.0 * cell_agree.item() / live.item(),
        }
        for t in range(steps):
            record[f"error_step{t + 1}"] = 100.0 * step_wrong[t].item() / n
            record[f"error_from_step{t + 1}"] = 100.0 * suffix_wrong[t].item() / n
            record[f"cell_accuracy_step{t + 1}"] = 100.0 * step_cell_right[t].item() / live.item()
        return record

    def evaluate(self) -> dict:
        """Evaluate every evaluation split; keys like `test/error_goodness`, in percent."""
        return evaluate_splits(self.data.eval_splits, self.evaluate_split)

    # -- state ------------------------------------------------------------------------------

    def checkpoint_parts(self) -> CheckpointParts:
        """Return the weights, optimizers and random generators by checkpoint key."""
        return CheckpointParts(
            parts={"network": self.model, "optimizers": list(self.optimizers)},
            generators={"sample_rng": self.sample_generator, "label_rng": self.label_generator,
                        "mask_rng": self.mask_generator},
        )


def build_nca_trainer(config: NCARunConfig, data_dir: str | None, device: torch.device) -> NCATrainer:
    """Load the data of an NCA run and build its trainer (the hook used by `training.train`)."""
    return NCATrainer(config, load_training_data(config, data_dir, device), device)
