"""Per-stage checkpoints of a pipeline run, and their merge into one single-process checkpoint.

After each epoch, replica 0 of every stage writes `checkpoints/stage{S}-epoch{E}.pt` with its
blocks, their optimizers and, on the last stage, the read-out. When all have written, rank 0
records the epoch in `pipeline.json` and merges the files into `checkpoint.pt`, which has the
format of a single-process run, so `forwardforward evaluate` and a single-process `--resume`
read it. Older stage files are deleted only after `pipeline.json` names the new epoch, so a
crash at any point leaves one complete set.

NOTE: the run directory must be on a file system that every machine of the job shares, because
each rank reads its stage file from it on resume and rank 0 reads all of them to merge.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..config import RunConfig, config_to_dict
from ..errors import UsageError
from ..training.checkpoint import load_checkpoint, save_checkpoint
from ..training.trainer import Trainer
from .layout import ParallelLayout

STAGE_FOLDER = "checkpoints"
MANIFEST_FILE = "pipeline.json"


def stage_file(run_dir: Path, stage: int, epoch: int) -> Path:
    """Path of one stage's checkpoint after `epoch`."""
    return Path(run_dir) / STAGE_FOLDER / f"stage{stage}-epoch{epoch}.pt"


def stage_state(trainer: Trainer, layout: ParallelLayout, stage: int) -> dict:
    """Everything one stage needs to continue: its blocks, their optimizers, the RNGs, the read-out."""
    first, end = layout.bounds[stage]
    blocks = list(trainer.network.blocks)[first:end]
    last = stage == layout.stages - 1
    return {
        "epoch": trainer.epoch,
        "stage": stage,
        "bounds": [list(b) for b in layout.bounds],
        "blocks": [block.state_dict() for block in blocks],
        "block_optimizers": [block.optimizer.state_dict() for block in blocks],
        "readout": trainer.readout.state_dict() if last and trainer.readout is not None else None,
        "readout_optimizer": (
            trainer.readout.optimizer.state_dict() if last and trainer.readout is not None else None
        ),
        "shuffle_rng": trainer.shuffle_generator.get_state(),
        "negatives_rng": trainer.negatives_generator.get_state(),
    }


def load_stage_state(trainer: Trainer, layout: ParallelLayout, stage: int, state: dict) -> None:
    """Restore what `stage_state` returned into this rank's trainer.

    Raises:
        UsageError: the file belongs to another stage or does not fit the network.
    """
    if state.get("stage") != stage or [tuple(b) for b in state.get("bounds", [])] != list(layout.bounds):
        raise UsageError(
            f"stage checkpoint of stage {state.get('stage')} with layers {state.get('bounds')} does not fit "
            f"stage {stage} of layout {list(layout.bounds)}"
        )
    first, end = layout.bounds[stage]
    try:
        for block, block_state, opt_state in zip(
            list(trainer.network.blocks)[first:end], state["blocks"], state["block_optimizers"], strict=True
        ):
            block.load_state_dict(block_state)
            block.optimizer.load_state_dict(opt_state)
        if trainer.readout is not None and stage == layout.stages - 1:
            trainer.readout.load_state_dict(state["readout"])
            trainer.readout.optimizer.load_state_dict(state["readout_optimizer"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise UsageError(f"the stage checkpoint does not match this run's configuration: {exc}".splitlines()[0]) from None
    trainer.shuffle_generator.set_state(state["shuffle_rng"].cpu())
    trainer.negatives_generator.set_state(state["negatives_rng"].cpu())
    trainer.epoch = int(state["epoch"])


def merge_stage_states(states: list[dict], config: RunConfig) -> dict:
    """Combine the states of all stages, bottom first, into the state of a single-process `Trainer`.

    The negative-label generator is taken from the stage that draws from it: the first stage
    for random negatives, the last for hard ones.
    """
    network = {}
    block_optimizers = []
    for state in states:
        first = state["bounds"][state["stage"]][0]
        for offset, block_state in enumerate(state["blocks"]):
            for key, value in block_state.items():
                network[f"blocks.{first + offset}.{key}"] = value  # FFNetwork's state_dict keys
        block_optimizers.extend(state["block_optimizers"])
    drawing = states[0] if config.negatives.kind == "random" else states[-1]
    return {
        "config": config_to_dict(config),
        "epoch": states[0]["epoch"],
        "network": network,
        "block_optimizers": block_optimizers,
        "readout": states[-1]["readout"],
        "readout_optimizer": states[-1]["readout_optimizer"],
        "shuffle_rng": states[0]["shuffle_rng"],
        "negatives_rng": drawing["negatives_rng"],
    }


def write_manifest(run_dir: Path, epoch: int, layout: ParallelLayout) -> None:
    """Record atomically that the stage files of `epoch` are complete."""
    path = Path(run_dir) / MANIFEST_FILE
    tmp = path.with_suffix(".json.tmp")
    record = {"epoch": epoch, "stages": layout.stages, "bounds": [list(b) for b in layout.bounds]}
    tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(run_dir: Path) -> dict | None:
    """Read the last complete epoch and layout of a pipeline run; None if it has none."""
    path = Path(run_dir) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc}); resume from checkpoint.pt by deleting it") from None


def merge_to_checkpoint(run_dir: Path, layout: ParallelLayout, epoch: int, config: RunConfig, path: Path) -> None:
    """Read every stage file of `epoch` and write the merged single-process checkpoint to `path`."""
    states = [load_checkpoint(stage_file(run_dir, stage, epoch)) for stage in range(layout.stages)]
    save_checkpoint(path, merge_stage_states(states, config))


def remove_older_stage_files(run_dir: Path, stage: int, keep_epoch: int) -> None:
    """Delete this stage's files of epochs other than `keep_epoch`."""
    for path in (Path(run_dir) / STAGE_FOLDER).glob(f"stage{stage}-epoch*.pt"):
        if path != stage_file(run_dir, stage, keep_epoch):
            path.unlink(missing_ok=True)
