"""Run directories: start, resume and evaluate a training run on disk.

A run directory contains `config.json` (the resolved configuration), `run.json` (package version,
git commit, torch version, device), `metrics.jsonl` (one line per epoch),
`goodness_histograms.jsonl` (binned goodness per block, one line per epoch), `checkpoint.pt`
(the last completed epoch, written atomically) and, with TensorBoard logging, `tensorboard/`.
"""

from __future__ import annotations

import json
import logging
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import __version__
from ..config import RunConfig, config_from_dict, config_to_dict, variant_module
from ..data import load_dataset, resolve_data_dir
from ..errors import RunInterrupted, UsageError
from .checkpoint import load_checkpoint, save_checkpoint
from .histograms import HISTOGRAMS_FILE
from .metrics import MetricsLog
from .tensorboard import TENSORBOARD_DIR, TensorBoardLogger, summary_writer_class
from .trainer import Trainer, TrainingData, resolve_device


logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
RUN_INFO_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class RunResult:
    """Outcome of a finished run: its folder and the final epoch's metrics."""

    run_dir: Path
    final: dict


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_commit() -> str | None:
    """Commit of the source tree this package was imported from, when it is a git checkout.

    A trailing `-dirty` marks uncommitted changes in that checkout.
    """
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return f"{commit}-dirty" if status else commit


def recorded_data_dir(run_dir: Path) -> str | None:
    """Data folder that a run was started with, if `run.json` records one that still exists."""
    try:
        recorded = json.loads((Path(run_dir) / RUN_INFO_FILE).read_text(encoding="utf-8")).get("data_dir")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    return recorded if recorded and Path(recorded).is_dir() else None


def load_training_data(config: RunConfig, data_dir: str | None, device: torch.device) -> TrainingData:
    """Load the configured data set and move its splits to `device`.

    Raises:
        UsageError: an unknown data set or split, or a `data_dir` that is not a folder.
        DataError: missing, corrupt or invalid data files.
    """
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise UsageError(
            f"data folder not found: {data_dir}; pass --data-dir a folder whose sub-folder "
            f"{config.data.dataset}/ contains the data files"
        )

    splits = load_dataset(config.data.dataset, data_dir=data_dir, split=config.data.split, limit=config.data.limit)
    eval_splits = {}
    if splits.valid is not None:
        eval_splits["valid"] = _spaced_subset(splits.valid, config.data.eval_limit, device)
    eval_splits["test"] = _spaced_subset(splits.test, config.data.eval_limit, device)
    train_limit = config.data.train_limit
    return TrainingData(
        train_images=splits.train.images[:train_limit].to(device),
        train_labels=splits.train.labels[:train_limit].to(device),
        eval_splits=eval_splits,
        num_classes=splits.num_classes,
        image_shape=tuple(splits.image_shape),
    )


def _spaced_subset(split, limit: int | None, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Return `limit` evenly spaced samples of a split (all when None), moved to `device`."""
    images, labels = split.images, split.labels
    if limit is not None and limit < images.shape[0]:
        index = torch.arange(limit) * images.shape[0] // limit
        images, labels = images[index], labels[index]
    return images.to(device), labels.to(device)


def make_trainer(config, data: TrainingData, device: torch.device):
    """Create the trainer of a run: the core `Trainer`, its backprop baseline or recurrent form,
    or the trainer of the config's variant.

    Every trainer offers `epoch`, `total_epochs`, `train_epoch`, `evaluate`, `state_dict` and
    `load_state_dict`, which is all that `train` and `evaluate_run` use.

    Raises:
        UsageError: settings that the trainer rejects.
    """
    if getattr(config, "variant", "ff") != "ff":
        return variant_module(config.variant).make_trainer(config, data, device)
    if config.trainer == "backprop":
        from ..baselines.backprop import BackpropTrainer

        return BackpropTrainer(config, data, device)
    if config.recurrent.enabled:
        from ..variants.hinton_recurrent import RecurrentTrainer

        return RecurrentTrainer(config, data, device)
    return Trainer(config, data, device)


# Variants with a trainer of their own: the module and function that load the data and build
# it, imported only when a run uses that variant.
VARIANT_TRAINERS = {
    "scff": ("forwardforward.variants.scff_trainer", "build_scff_trainer"),
    "nca": ("forwardforward.variants.nca_trainer", "build_nca_trainer"),
}


def _trainer_for_run(config, data_dir: str | None, torch_device: torch.device, device: str | None):
    """Load a run's data and build its trainer; variants in `VARIANT_TRAINERS` load their own data.

    Raises:
        UsageError: an invalid setting or data folder.
        DataError: missing or corrupt data.
    """
    variant = getattr(config, "variant", "ff")
    if variant in VARIANT_TRAINERS:
        import importlib

        module_name, function_name = VARIANT_TRAINERS[variant]
        return getattr(importlib.import_module(module_name), function_name)(config, data_dir, torch_device)
    data = load_training_data(config, data_dir, torch_device)
    return build_trainer(config, data, torch_device, device)


def read_run_config(run_dir: Path) -> RunConfig:
    """Read the resolved configuration of a run directory.

    Raises:
        UsageError: the folder is missing or contains no forwardforward run.
    """
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"{run_dir} is a file, not a run directory")
    if not run_dir.is_dir():
        raise UsageError(f"run directory not found: {run_dir}")
    if not path.is_file():
        raise UsageError(f"{run_dir} contains no forwardforward run (no {CONFIG_FILE}); check the path")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    return config_from_dict(values)


def _data_device(config: RunConfig, device: str | None) -> torch.device:
    # The JAX backend copies the data from PyTorch tensors on the CPU to its own device.
    if getattr(config.train, "backend", "torch") == "jax":
        return torch.device("cpu")
    return resolve_device(device or config.train.device)


def build_trainer(config: RunConfig, data: TrainingData, torch_device: torch.device, device: str | None = None):
    """Create the trainer of the configured backend (`train.backend`) for data on `torch_device`.

    Args:
        device: the requested device name, which the JAX backend resolves itself.

    Raises:
        UsageError: an invalid setting, or `train.backend = 'jax'` without JAX installed.
    """
    if getattr(config.train, "backend", "torch") == "jax":
        try:
            from ..jax.trainer import JaxTrainer
        except ImportError as exc:
            raise UsageError(f"train.backend = 'jax' cannot start: {exc}") from None
        return JaxTrainer(config, data, device or config.train.device)
    return make_trainer(config, data, torch_device)


def _prepare_new_run(
    config: RunConfig, out_dir: Path | None, device: torch.device, data_dir: Path, backend_info: dict | None = None
) -> Path:
    if out_dir is None:
        out_dir = Path("runs") / f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} exists and is not a directory; choose a folder path")
    # A config.json without checkpoint.pt is a run that died before its first checkpoint:
    # nothing can be resumed from it, so it is started afresh.
    if (out_dir / CHECKPOINT_FILE).exists():
        raise UsageError(
            f"{out_dir} already contains a run; continue it with --resume {out_dir} or choose another --out"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CONFIG_FILE).write_text(json.dumps(config_to_dict(config), indent=2) + "\n", encoding="utf-8")
    info = {
        "forwardforward_version": __version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": str(device),
        "data_dir": str(data_dir),
        "num_threads": torch.get_num_threads(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(backend_info or {}),
    }
    (out_dir / RUN_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out_dir


def train(
    config: RunConfig | None = None,
    out_dir: str | Path | None = None,
    data_dir: str | None = None,
    resume: str | Path | None = None,
    device: str | None = None,
    progress: bool = True,
    tensorboard: bool = False,
) -> RunResult:
    """Train an FF network, or continue a run, writing everything to its run directory.

    Args:
        config: the configuration of a new run; ignored (must be None) when resuming.
        out_dir: folder of a new run; default `runs/<recipe>-<time>`.
        data_dir: data folder; see `forwardforward.data.resolve_data_dir` for the search order.
            A resumed run defaults to the folder it was started with.
        resume: run directory to continue from its last checkpoint.
        device: overrides `train.device` (`auto`, `cpu`, `cuda`).
        progress: show a progress bar per epoch.
        tensorboard: also log metrics and goodness histograms to `RUN_DIR/tensorboard/`. A
            resumed run whose folder contains `tensorboard/` continues logging there anyway.

    Returns:
        The run directory and the last epoch's metrics.

    Raises:
        UsageError: invalid configuration, an `out_dir` that already contains a run, a
            `resume` folder that contains no run, or `tensorboard` without its package.
        DataError: missing or corrupt data.
        TrainingError: the loss became NaN or infinite (the last good checkpoint is kept).
        RunInterrupted: Ctrl-C during training (the last checkpoint is kept).
    """
    if resume is not None:
        run_dir = Path(resume)
        config = read_run_config(run_dir)
        data_dir = data_dir if data_dir is not None else recorded_data_dir(run_dir)
        if not (run_dir / CHECKPOINT_FILE).is_file():
            raise UsageError(
                f"{run_dir} has no {CHECKPOINT_FILE} to resume from (the run stopped before its first "
                f"checkpoint); start it again with --out {run_dir}"
            )
    elif config is None:
        raise UsageError("train() needs a config for a new run, or resume=RUN_DIR")
    if tensorboard:
        summary_writer_class()  # fails before any file is written when tensorboard is missing
    torch_device = _data_device(config, device)
    # Creating the trainer validates the settings before any file is written.
    trainer = _trainer_for_run(config, data_dir, torch_device, device)
    if resume is None:
        run_dir = _prepare_new_run(
            config, Path(out_dir) if out_dir is not None else None, torch_device, resolve_data_dir(data_dir),
            getattr(trainer, "run_info", None),
        )
    logger.info("run directory: %s", run_dir)
    metrics = MetricsLog(run_dir / METRICS_FILE)
    histograms = MetricsLog(run_dir / HISTOGRAMS_FILE)
    checkpoint_path = run_dir / CHECKPOINT_FILE
    if resume is not None:
        trainer.load_state_dict(load_checkpoint(checkpoint_path, map_location=torch_device))
        metrics.truncate_after(trainer.epoch)
        histograms.truncate_after(trainer.epoch)
        logger.info("resuming %s after epoch %d", run_dir, trainer.epoch)
    else:
        save_checkpoint(checkpoint_path, _checkpoint_state(trainer, config))

    board = _open_tensorboard(run_dir, tensorboard, None if resume is None else trainer.epoch)
    record: dict = {}
    saved_epoch = trainer.epoch
    try:
        while trainer.epoch < trainer.total_epochs:
            record = trainer.train_epoch(progress=progress)
            epoch = record["epoch"]
            if epoch % config.train.eval_every == 0 or epoch == trainer.total_epochs:
                start = time.perf_counter()
                record.update(trainer.evaluate())
                record["eval_time_s"] = time.perf_counter() - start
            metrics.append(record)
            # Variant trainers that do not bin goodness (no `histograms`) write no histogram line.
            trainer_histograms = getattr(trainer, "histograms", None)
            histogram_record = None if trainer_histograms is None else trainer_histograms.to_record(epoch)
            if histogram_record is not None:
                histograms.append(histogram_record)
            if board is not None:
                board.log_epoch(record, histogram_record)
            save_checkpoint(checkpoint_path, _checkpoint_state(trainer, config))
            saved_epoch = epoch
            logger.info("%s", format_epoch(record))
    except KeyboardInterrupt:
        raise RunInterrupted(
            f"interrupted; checkpoint.pt keeps epoch {saved_epoch}. "
            f"Continue with: forwardforward train --resume {run_dir}"
        ) from None
    finally:
        if board is not None:
            board.close()
    if not record:
        records = metrics.read()
        record = records[-1] if records else {}
    return RunResult(run_dir=run_dir, final=record)


def _open_tensorboard(run_dir: Path, requested: bool, resumed_after: int | None) -> TensorBoardLogger | None:
    if requested:
        return TensorBoardLogger(run_dir, resumed_after)
    if resumed_after is None or not (run_dir / TENSORBOARD_DIR).is_dir():
        return None
    try:
        return TensorBoardLogger(run_dir, resumed_after)
    except UsageError as exc:
        logger.warning("not continuing the TensorBoard log of %s: %s", run_dir, exc)
        return None


def _checkpoint_state(trainer: Trainer, config: RunConfig) -> dict:
    return {"config": config_to_dict(config), **trainer.state_dict()}


def format_epoch(record: dict) -> str:
    """Format one log line for an epoch: losses, errors in percent, time and samples/s."""
    parts = [f"epoch {record['epoch']}"]
    losses = [v for k, v in record.items() if k.endswith("/loss") and k.startswith(("layer", "group"))]
    if losses:
        parts.append("loss " + " ".join(f"{v:.4f}" for v in losses))
    for key in ("valid/error_goodness", "valid/error_softmax", "valid/error_probe",
                "test/error_goodness", "test/error_softmax", "test/error_probe"):
        if key in record:
            parts.append(f"{key} {record[key]:.2f} %")
    parts.append(f"{record['epoch_time_s']:.1f} s, {record['samples_per_s']:.0f} samples/s")
    return ", ".join(parts)


def evaluate_run(run_dir: str | Path, data_dir: str | None = None, device: str | None = None) -> dict:
    """Evaluate the last checkpoint of a run on its validation and test splits.

    Returns:
        Error rates in percent with keys like `test/error_goodness`, plus `epoch`.

    Raises:
        UsageError: the folder contains no run or no checkpoint.
        DataError: missing or corrupt data.
    """
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    data_dir = data_dir if data_dir is not None else recorded_data_dir(run_dir)
    torch_device = _data_device(config, device)
    state = load_checkpoint(run_dir / CHECKPOINT_FILE, map_location=torch_device)
    trainer = _trainer_for_run(config, data_dir, torch_device, device)
    trainer.load_state_dict(state)
    return {"epoch": trainer.epoch, **trainer.evaluate()}
