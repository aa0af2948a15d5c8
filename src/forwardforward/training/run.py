"""Run directories: start, resume and evaluate a training run on disk.

A run directory contains `config.json` (the resolved configuration), `run.json` (package version,
git commit, torch version, device), `metrics.jsonl` (one line per epoch) and `checkpoint.pt`
(the last completed epoch, written atomically).
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
from ..config import RunConfig, config_from_dict, config_to_dict
from ..data import load_dataset, resolve_data_dir
from ..errors import RunInterrupted, UsageError
from .checkpoint import load_checkpoint, save_checkpoint
from .metrics import MetricsLog
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
        eval_splits["valid"] = (splits.valid.images.to(device), splits.valid.labels.to(device))
    eval_splits["test"] = (splits.test.images.to(device), splits.test.labels.to(device))
    return TrainingData(
        train_images=splits.train.images.to(device),
        train_labels=splits.train.labels.to(device),
        eval_splits=eval_splits,
        num_classes=splits.num_classes,
        image_shape=tuple(splits.image_shape),
    )


# Variants with a trainer of their own: the module and function that load the data and build
# it, imported only when a run uses that variant.
VARIANT_TRAINERS = {
    "scff": ("forwardforward.variants.scff_trainer", "build_scff_trainer"),
}


def build_trainer(config, data_dir: str | None, device: torch.device):
    """Load a run's data and build its trainer: the FF `Trainer` or the variant's own.

    Raises:
        UsageError: an invalid setting or data folder.
        DataError: missing or corrupt data.
    """
    variant = getattr(config, "variant", "ff")
    if variant == "ff":
        return Trainer(config, load_training_data(config, data_dir, device), device)
    import importlib

    module_name, function_name = VARIANT_TRAINERS[variant]
    return getattr(importlib.import_module(module_name), function_name)(config, data_dir, device)


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


def _prepare_new_run(config: RunConfig, out_dir: Path | None, device: torch.device, data_dir: Path) -> Path:
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

    Returns:
        The run directory and the last epoch's metrics.

    Raises:
        UsageError: invalid configuration, an `out_dir` that already contains a run, or a
            `resume` folder that contains no run.
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
    torch_device = resolve_device(device or config.train.device)
    trainer = build_trainer(config, data_dir, torch_device)  # validates the settings before any file is written
    if resume is None:
        run_dir = _prepare_new_run(
            config, Path(out_dir) if out_dir is not None else None, torch_device, resolve_data_dir(data_dir)
        )
    logger.info("run directory: %s", run_dir)
    metrics = MetricsLog(run_dir / METRICS_FILE)
    checkpoint_path = run_dir / CHECKPOINT_FILE
    if resume is not None:
        trainer.load_state_dict(load_checkpoint(checkpoint_path, map_location=torch_device))
        metrics.truncate_after(trainer.epoch)
        logger.info("resuming %s after epoch %d", run_dir, trainer.epoch)
    else:
        save_checkpoint(checkpoint_path, _checkpoint_state(trainer, config))

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
            save_checkpoint(checkpoint_path, _checkpoint_state(trainer, config))
            saved_epoch = epoch
            logger.info("%s", format_epoch(record))
    except KeyboardInterrupt:
        raise RunInterrupted(
            f"interrupted; checkpoint.pt keeps epoch {saved_epoch}. "
            f"Continue with: forwardforward train --resume {run_dir}"
        ) from None
    if not record:
        records = metrics.read()
        record = records[-1] if records else {}
    return RunResult(run_dir=run_dir, final=record)


def _checkpoint_state(trainer: Trainer, config: RunConfig) -> dict:
    return {"config": config_to_dict(config), **trainer.state_dict()}


def format_epoch(record: dict) -> str:
    """Format one log line for an epoch: losses, errors in percent, time and samples/s."""
    parts = [f"epoch {record['epoch']}"]
    losses = [v for k, v in record.items() if k.endswith("/loss") and k.startswith("layer")]
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
    torch_device = resolve_device(device or config.train.device)
    state = load_checkpoint(run_dir / CHECKPOINT_FILE, map_location=torch_device)
    trainer = build_trainer(config, data_dir, torch_device)
    trainer.load_state_dict(state)
    return {"epoch": trainer.epoch, **trainer.evaluate()}
