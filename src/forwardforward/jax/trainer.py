"""The JAX training loop behind `forwardforward train --backend jax`.

`JaxTrainer` offers the interface of `forwardforward.training.Trainer` (`train_epoch`,
`evaluate`, `state_dict`, `load_state_dict`, `epoch`, `total_epochs`), so the run directory,
metrics file, checkpoints and resume of `forwardforward.training.run` work unchanged.
Every random draw comes from a key derived from the seed, the epoch and the batch number, so a
resumed run draws the same shuffles and negatives as an uninterrupted one.
"""

from __future__ import annotations

import functools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
from tqdm import tqdm

from ..config import RunConfig
from ..errors import TrainingError, UsageError
from ..optim import OptimizerConfig
from ..training.schedules import lr_gain
from ..training.trainer import TrainingData
from .model import FFModel, FFSpec
from .optim import gain_schedule

# How often (in batches) the progress bar reads the loss back from the device.
_PROGRESS_EVERY = 50

# Sub-keys of the run's seed key.
_INIT_STREAM, _SHUFFLE_STREAM, _NEGATIVES_STREAM = 0, 1, 2


def resolve_jax_device(name: str) -> jax.Device:
    """Turn `auto`, `cpu`, `cuda` or `cuda:N` into a JAX device.

    Raises:
        UsageError: a GPU was asked for but JAX sees none, or the name is invalid.
    """
    if name == "auto":
        return jax.devices()[0]
    kind, _, number = name.partition(":")
    if kind not in ("cpu", "cuda") or (number and not number.isdigit()):
        raise UsageError(f"invalid device {name!r}; use auto, cpu, cuda or cuda:N")
    try:
        devices = jax.devices("cpu" if kind == "cpu" else "gpu")
    except RuntimeError:
        raise UsageError(f"device {name!r} was requested but JAX finds no GPU; use --device cpu") from None
    index = int(number or 0)
    if index >= len(devices):
        raise UsageError(f"device {name!r} does not exist; JAX sees {len(devices)} {kind} device(s)")
    return devices[index]


def _to_device(tensor: torch.Tensor, device: jax.Device) -> jax.Array:
    array = tensor.cpu().numpy()
    if array.dtype == np.int64:
        array = array.astype(np.int32)  # JAX runs without 64-bit integers by default
    return jax.device_put(array, device)


@functools.lru_cache(maxsize=8)
def _shared_model(
    spec: FFSpec,
    optimizer: OptimizerConfig,
    readout_optimizer: OptimizerConfig,
    lr_schedule: str,
    epochs: int,
    steps_per_epoch: int,
) -> FFModel:
    # Trainers with equal settings share one model, and with it the compiled steps, so that
    # resuming or evaluating in the same process does not compile again.
    gain = gain_schedule(lr_schedule, epochs, steps_per_epoch)
    return FFModel(spec, optimizer, readout_optimizer, gain)


class JaxTrainer:
    """Owns the JAX model, its state and the data of a run; trains one epoch at a time.

    Args:
        config: the run's configuration (`train.schedule` must be `simultaneous`).
        data: the splits as PyTorch tensors; they are copied to the JAX device.
        device: `auto`, `cpu`, `cuda` or `cuda:N`.

    Raises:
        UsageError: a setting that the JAX backend does not support, or a missing device.
    """

    def __init__(self, config: RunConfig, data: TrainingData, device: str = "auto") -> None:
        self.config = config
        self.device = resolve_jax_device(device)
        self.images = _to_device(data.train_images, self.device)
        self.labels = _to_device(data.train_labels, self.device)
        self.eval_splits = {
            name: (_to_device(images, self.device), _to_device(labels, self.device))
            for name, (images, labels) in data.eval_splits.items()
        }
        self.num_samples = int(self.images.shape[0])
        self.num_batches = math.ceil(self.num_samples / config.train.batch_size)

        spec = FFSpec.from_config(config, int(self.images.shape[1]), data.num_classes)
        self.model = _shared_model(
            spec, config.optimizer, config.readout.optimizer,
            config.train.lr_schedule, config.train.epochs, self.num_batches,
        )
        self.key = jax.random.PRNGKey(config.train.seed)
        with jax.default_device(self.device):
            self.state = self.model.init(jax.random.fold_in(self.key, _INIT_STREAM))
        self.epoch = 0  # completed epochs

    @property
    def run_info(self) -> dict:
        """Backend, library versions and device, for the run's `run.json`."""
        import flax
        import optax

        return {
            "backend": "jax",
            "jax_version": jax.__version__,
            "flax_version": flax.__version__,
            "optax_version": optax.__version__,
            "device": str(self.device),
        }

    @property
    def total_epochs(self) -> int:
        """All epochs of the run."""
        return self.config.train.epochs

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if not self.config.train.shuffle:
            return np.arange(self.num_samples, dtype=np.int32)
        key = jax.random.fold_in(jax.random.fold_in(self.key, _SHUFFLE_STREAM), epoch)
        return np.asarray(jax.random.permutation(key, self.num_samples)).astype(np.int32)

    def train_epoch(self, progress: bool = True) -> dict:
        """Run the next epoch and return its training metrics, with the PyTorch trainer's keys.

        Raises:
            TrainingError: a loss or goodness became NaN or infinite.
        """
        epoch = self.epoch + 1
        batch_size = self.config.train.batch_size
        order = self._epoch_order(epoch)
        epoch_key = jax.random.fold_in(jax.random.fold_in(self.key, _NEGATIVES_STREAM), epoch)
        num_blocks = len(self.model.spec.hidden)

        sums = jnp.zeros(3 * num_blocks + 2, jnp.float32)
        start = time.perf_counter()
        bar = tqdm(
            total=self.num_batches, desc=f"epoch {epoch}/{self.total_epochs}", unit="batch",
            disable=not progress, leave=False, dynamic_ncols=True,
        )
        for b in range(self.num_batches):
            # NOTE: a smaller last batch has another shape, so the step compiles once more for it.
            index = order[b * batch_size : (b + 1) * batch_size]
            self.state, values = self.model.train_step_at(
                self.state, self.images, self.labels, index, epoch_key, np.int32(b)
            )
            sums = sums + values
            if progress and ((b + 1) % _PROGRESS_EVERY == 0 or b + 1 == self.num_batches):
                self._check_finite(sums, epoch)
                elapsed = time.perf_counter() - start
                bar.set_postfix(
                    loss=f"{float(jnp.sum(sums[: 3 * num_blocks : 3])) / (b + 1):.4f}",
                    samples_s=f"{min(self.num_samples, (b + 1) * batch_size) / elapsed:.0f}",
                )
            bar.update(1)
        bar.close()
        sums = np.asarray(jax.block_until_ready(sums), dtype=np.float64)
        elapsed = time.perf_counter() - start
        self._check_finite(sums, epoch)

        means = sums / self.num_batches
        record: dict = {"epoch": epoch, "lr_gain": lr_gain(self.config.train.lr_schedule, epoch, self.total_epochs)}
        for i in range(num_blocks):
            record[f"layer{i + 1}/loss"] = float(means[3 * i])
            record[f"layer{i + 1}/goodness_pos"] = float(means[3 * i + 1])
            record[f"layer{i + 1}/goodness_neg"] = float(means[3 * i + 2])
        if self.model.readout is not None:
            record["train/readout_loss"] = float(means[-2])
            record["train/error_softmax"] = 100.0 * float(sums[-1]) / self.num_samples
        record["epoch_time_s"] = elapsed
        record["samples_per_s"] = self.num_samples / elapsed
        self.epoch = epoch
        return record

    def _check_finite(self, sums, epoch: int) -> None:
        if not bool(np.all(np.isfinite(np.asarray(sums)))):
            raise TrainingError(
                f"a loss or goodness became NaN or infinite in epoch {epoch}; training stopped and "
                "the checkpoint of the last good epoch was kept. Lower optimizer.lr or check the data"
            )

    def evaluate(self) -> dict:
        """Error rates in percent on every evaluation split, with keys like `test/error_goodness`."""
        batch_size = self.config.train.eval_batch_size
        num_blocks = len(self.model.spec.hidden)
        result = {}
        for name, (images, labels) in self.eval_splits.items():
            wrong = jnp.zeros(2 + num_blocks, jnp.int32)
            for start in range(0, images.shape[0], batch_size):
                stop = start + batch_size
                wrong = wrong + self.model.count_errors(self.state, images[start:stop], labels[start:stop])
            counts = np.asarray(wrong)
            n = max(int(images.shape[0]), 1)
            result[f"{name}/error_goodness"] = 100.0 * int(counts[0]) / n
            if self.model.readout is not None:
                result[f"{name}/error_softmax"] = 100.0 * int(counts[1]) / n
            for i in range(num_blocks):
                result[f"{name}/error_layer{i + 1}"] = 100.0 * int(counts[2 + i]) / n
        return result

    # -- state ------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Weights, optimizer states, peer means and the epoch, as PyTorch tensors for `torch.save`.

        The leaves of the state pytree are stored in their flattening order; the random keys
        need no storage because they are derived from the seed and the epoch.
        """
        leaves = jax.tree_util.tree_leaves(self.state)
        return {
            "epoch": self.epoch,
            "backend": "jax",
            "jax_state": [torch.from_numpy(np.array(leaf)) for leaf in leaves],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned.

        Raises:
            UsageError: the checkpoint was not written by the JAX backend, or does not fit this
                run's model.
        """
        if state.get("backend") != "jax" or "jax_state" not in state:
            raise UsageError(
                "the checkpoint was written by the PyTorch backend; resume it with --backend torch"
            )
        template, treedef = jax.tree_util.tree_flatten(self.state)
        stored = state["jax_state"]
        if len(stored) != len(template):
            raise UsageError(
                f"the checkpoint holds {len(stored)} arrays but this run's model needs {len(template)}; "
                "it belongs to another configuration"
            )
        leaves = []
        for i, (saved, current) in enumerate(zip(stored, template)):
            array = saved.numpy()
            if array.shape != current.shape or array.dtype != current.dtype:
                raise UsageError(
                    f"checkpoint array {i} has shape {array.shape} and dtype {array.dtype}, but this "
                    f"run's model needs {current.shape} and {current.dtype}"
                )
            leaves.append(jax.device_put(array, self.device))
        self.state = jax.tree_util.tree_unflatten(treedef, leaves)
        self.epoch = int(state["epoch"])
