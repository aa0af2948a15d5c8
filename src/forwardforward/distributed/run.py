"""Start, resume and evaluate a pipeline or data-parallel run; each process of torchrun calls this.

The run directory has the layout of a single-process run (`config.json`, `run.json`,
`metrics.jsonl`, `checkpoint.pt`) plus `pipeline.json` and `checkpoints/`, the per-stage files.
Rank 0 alone writes metrics, logs and shows progress.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from ..config import RunConfig
from ..data import resolve_data_dir
from ..errors import RunInterrupted, TrainingError, UsageError
from ..training.checkpoint import load_checkpoint, save_checkpoint
from ..training.metrics import MetricsLog
from ..training.run import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    RUN_INFO_FILE,
    RunResult,
    _prepare_new_run,
    format_epoch,
    load_training_data,
    read_run_config,
    recorded_data_dir,
)
from ..training.trainer import Trainer, resolve_device
from . import checkpoint as stage_checkpoint
from .comm import Communicator, DistributedError, launch_environment
from .layout import ParallelLayout, make_layout
from .stage import PipelineStage

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 300.0


def _device_for(name: str, local_rank: int) -> torch.device:
    device = resolve_device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)  # one GPU per process of a machine
    return device


def _check_batches(n: int, batch_size: int, replicas: int) -> None:
    last = n % batch_size
    if batch_size < replicas or 0 < last < replicas:
        raise UsageError(
            f"{replicas} data-parallel replicas need at least one sample each in every batch, but "
            f"train.batch_size = {batch_size} on {n} samples leaves a last batch of {last or batch_size}; "
            "choose another train.batch_size or data.limit"
        )


def train_distributed(
    config: RunConfig | None = None,
    out_dir: str | Path | None = None,
    data_dir: str | None = None,
    resume: str | Path | None = None,
    device: str | None = None,
    progress: bool = True,
    parallel: str = "pipeline",
    stages: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> RunResult | None:
    """Train, or continue, a run as one process of a torchrun job.

    `train.batch_size` is the global batch: data-parallel replicas split it, so a run gives
    the same result as a single process with the same recipe, whatever the layout.

    Args:
        config, out_dir, data_dir, resume, device, progress: as for
            `forwardforward.training.train`; only rank 0 shows progress.
        parallel: `pipeline` (one stage per process), `data` (one stage, every process a
            replica) or `both`.
        stages: number of stages for `both`.
        timeout_s: maximum wait of any one send, receive or collective, in seconds.

    Returns:
        The run directory and the last epoch's metrics on rank 0; None on the other ranks.

    Raises:
        UsageError: not started by torchrun, an invalid layout or configuration, or an
            `out_dir` that already contains a run.
        DataError: missing or corrupt data.
        DistributedError: another rank died, hung or could not be reached (after at most
            `timeout_s`).
        TrainingError: the loss became NaN or infinite.
        RunInterrupted: Ctrl-C; the last complete checkpoint is kept.
    """
    rank, world_size, local_rank = launch_environment()
    if rank != 0:
        logging.getLogger("forwardforward").setLevel(logging.WARNING)
    if resume is not None:
        config = read_run_config(Path(resume))
        data_dir = data_dir if data_dir is not None else recorded_data_dir(Path(resume))
    elif config is None:
        raise UsageError("train_distributed() needs a config for a new run, or resume=RUN_DIR")

    # Everything that can fail on bad input is checked before any process waits for another.
    torch_device = _device_for(device or config.train.device, local_rank)
    data = load_training_data(config, data_dir, torch_device)
    trainer = Trainer(config, data, torch_device)
    costs = [sum(p.numel() for p in block.parameters()) for block in trainer.network.blocks]
    layout = make_layout(parallel, world_size, costs, stages)
    _check_batches(data.train_images.shape[0], config.train.batch_size, layout.replicas)

    comm = Communicator(rank, world_size, torch_device, timeout_s)
    run_dir = Path(resume) if resume is not None else None

    def resume_hint() -> str:
        if run_dir is None:
            return "No run directory was created"
        options = f"--parallel {parallel}" + (f" --stages {stages}" if stages is not None else "")
        return f"Continue with: torchrun ... -m forwardforward train --resume {run_dir} {options}"

    try:
        if run_dir is None:
            run_dir = comm.agree(lambda: _new_run_dir(config, out_dir, torch_device, data_dir, layout))
        stage = PipelineStage(trainer, layout, comm)
        _restore(trainer, layout, comm, run_dir)
        logger.info(
            "run directory: %s; %d stages x %d replicas, layers per stage %s", run_dir, layout.stages,
            layout.replicas, [end - first for first, end in layout.bounds],
        )
        return _train_epochs(trainer, stage, layout, comm, run_dir, progress)
    except KeyboardInterrupt:
        raise RunInterrupted(f"interrupted; the last complete checkpoint is kept. {resume_hint()}") from None
    except DistributedError as exc:
        raise DistributedError(f"{exc}. {resume_hint()}") from None
    finally:
        comm.close()


def _new_run_dir(config: RunConfig, out_dir, device: torch.device, data_dir, layout: ParallelLayout) -> Path:
    run_dir = _prepare_new_run(config, Path(out_dir) if out_dir is not None else None, device, resolve_data_dir(data_dir))
    info_path = run_dir / RUN_INFO_FILE
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info["parallel"] = {"stages": layout.stages, "replicas": layout.replicas, "bounds": [list(b) for b in layout.bounds]}
    info_path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return run_dir


def _restore(trainer: Trainer, layout: ParallelLayout, comm: Communicator, run_dir: Path) -> None:
    """Load the last complete checkpoint of `run_dir`, if any, on every rank."""
    manifest = stage_checkpoint.read_manifest(run_dir)
    stage = layout.stage_of(comm.rank)
    if manifest is not None and [tuple(b) for b in manifest["bounds"]] == list(layout.bounds):
        path = stage_checkpoint.stage_file(run_dir, stage, manifest["epoch"])
        stage_checkpoint.load_stage_state(trainer, layout, stage, load_checkpoint(path, map_location=trainer.device))
        logger.info("resuming %s after epoch %d from the stage checkpoints", run_dir, trainer.epoch)
    elif (run_dir / CHECKPOINT_FILE).is_file():
        # Another layout, or a single-process run: every rank reads the merged checkpoint.
        trainer.load_state_dict(load_checkpoint(run_dir / CHECKPOINT_FILE, map_location=trainer.device))
        logger.info("resuming %s after epoch %d from %s", run_dir, trainer.epoch, CHECKPOINT_FILE)
    if comm.rank == 0:
        MetricsLog(run_dir / METRICS_FILE).truncate_after(trainer.epoch)


def _train_epochs(
    trainer: Trainer, stage: PipelineStage, layout: ParallelLayout, comm: Communicator, run_dir: Path, progress: bool
) -> RunResult | None:
    config = trainer.config
    metrics = MetricsLog(run_dir / METRICS_FILE)
    record: dict = {}
    while trainer.epoch < trainer.total_epochs:
        comm.wait_s = 0.0
        start = time.perf_counter()
        sums, num_batches, gain, own_s = stage.train_epoch(progress=progress and comm.rank == 0)
        busy_s = own_s - comm.wait_s
        record = _epoch_record(trainer, stage, layout, comm, sums, num_batches, gain, start, busy_s)
        epoch = record["epoch"]
        if epoch % config.train.eval_every == 0 or epoch == trainer.total_epochs:
            start = time.perf_counter()
            record.update(_evaluate(trainer, stage, comm))
            record["eval_time_s"] = time.perf_counter() - start
        # Metrics first: a resume drops the lines of epochs after its checkpoint.
        if comm.rank == 0:
            metrics.append(record)
        _save(trainer, layout, comm, run_dir)
        logger.info("%s", format_epoch(record))
    if comm.rank != 0:
        return None
    if not record:
        records = metrics.read()
        record = records[-1] if records else {}
    return RunResult(run_dir=run_dir, final=record)


def _epoch_record(
    trainer: Trainer, stage: PipelineStage, layout: ParallelLayout, comm: Communicator,
    sums: torch.Tensor, num_batches: int, gain: float, start: float, busy_s: float,
) -> dict:
    """Combine every rank's sums into the metrics record a single process writes, plus idle time.

    `busy_s` is the time this rank spent on its epoch minus the time it was blocked on
    communication. The record gets each stage's busy time (averaged over its replicas) and
    the bubble fraction, the share of all stages' epoch time that they spent idle.

    Raises:
        TrainingError: a loss or goodness became NaN or infinite (on every rank at once).
    """
    epoch = trainer.epoch + 1
    num_blocks = len(trainer.network.blocks)
    busy = torch.zeros(layout.stages, device=sums.device)
    busy[stage.stage] = busy_s / layout.replicas
    combined = comm.all_reduce(torch.cat([sums, busy]))
    # Timed after the all-reduce, so that the epoch ends when the slowest stage has finished.
    elapsed = time.perf_counter() - start
    sums, busy = combined[: sums.numel()], combined[sums.numel() :]
    if not bool(torch.isfinite(sums).all()):
        raise TrainingError(
            f"a loss or goodness became NaN or infinite in epoch {epoch}; training stopped and the "
            "checkpoint of the last good epoch was kept. Lower optimizer.lr or check the data"
        )
    n = trainer.data.train_images.shape[0]
    means = (sums / num_batches).tolist()
    active = trainer.active_layer(epoch)
    record: dict = {"epoch": epoch, "lr_gain": gain}
    if active is not None:
        record["active_layer"] = active + 1
    for i in range(num_blocks):
        if active is not None and i != active:
            continue
        record[f"layer{i + 1}/loss"] = means[3 * i]
        record[f"layer{i + 1}/goodness_pos"] = means[3 * i + 1]
        record[f"layer{i + 1}/goodness_neg"] = means[3 * i + 2]
    if trainer.readout is not None:
        record["train/readout_loss"] = means[-2]
        record["train/error_softmax"] = 100.0 * sums[-1].item() / n
    record["epoch_time_s"] = elapsed
    record["samples_per_s"] = n / elapsed
    for s, stage_busy in enumerate(busy.tolist()):
        record[f"pipeline/stage{s + 1}_busy_s"] = stage_busy
    record["pipeline/bubble_fraction"] = 1.0 - busy.sum().item() / (layout.stages * elapsed)
    trainer.epoch = epoch
    return record


def _evaluate(trainer: Trainer, stage: PipelineStage, comm: Communicator) -> dict:
    """Error rates in percent on every evaluation split, computed through the pipeline."""
    result = {}
    for name, (images, labels) in trainer.data.eval_splits.items():
        counts = comm.all_reduce(stage.count_errors(images, labels)).tolist()
        n = max(images.shape[0], 1)
        result[f"{name}/error_goodness"] = 100.0 * counts[0] / n
        if trainer.readout is not None:
            result[f"{name}/error_softmax"] = 100.0 * counts[1] / n
        for i, wrong in enumerate(counts[2:], start=1):
            result[f"{name}/error_layer{i}"] = 100.0 * wrong / n
    return result


def _save(trainer: Trainer, layout: ParallelLayout, comm: Communicator, run_dir: Path) -> None:
    """Write the per-stage checkpoints of the epoch just finished, then the merged one."""
    stage = layout.stage_of(comm.rank)
    writer = layout.replica_of(comm.rank) == 0
    if writer:
        path = stage_checkpoint.stage_file(run_dir, stage, trainer.epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(path, stage_checkpoint.stage_state(trainer, layout, stage))
    comm.barrier()
    if comm.rank == 0:
        stage_checkpoint.write_manifest(run_dir, trainer.epoch, layout)
        stage_checkpoint.merge_to_checkpoint(run_dir, layout, trainer.epoch, trainer.config, run_dir / CHECKPOINT_FILE)
    comm.barrier()
    if writer:
        stage_checkpoint.remove_older_stage_files(run_dir, stage, trainer.epoch)
