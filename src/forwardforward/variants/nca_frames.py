"""PNG frames of a cellular automaton's per-cell predictions over its steps.

Frame t shows a few test digits as grids. Every live cell is coloured by the label it predicts
from its own scores at step t (goodness for FF, log-probability for the baseline), and empty
cells stay white. Each panel's title gives the true label and the image-level prediction at
that step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import UsageError
from ..training.checkpoint import load_checkpoint
from ..training.run import CHECKPOINT_FILE, read_run_config, recorded_data_dir
from .nca_trainer import NCATrainer, build_nca_trainer

FRAMES_DIR = "nca_frames"
DEFAULT_IMAGES = 8
DPI = 100


def load_trained(run_dir: str | Path, data_dir: str | None = None) -> NCATrainer:
    """Rebuild the trainer of an NCA run on the CPU from its last checkpoint.

    Raises:
        UsageError: the folder contains no NCA run or no checkpoint.
        DataError: missing or corrupt data.
    """
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if getattr(config, "variant", "ff") != "nca":
        raise UsageError(f"{run_dir} is not a cellular-automaton run (variant = {config.variant!r})")
    if not (run_dir / CHECKPOINT_FILE).is_file():
        raise UsageError(f"{run_dir} has no {CHECKPOINT_FILE} yet; plot it after the first epoch")
    device = torch.device("cpu")
    trainer = build_nca_trainer(config, data_dir if data_dir is not None else recorded_data_dir(run_dir), device)
    trainer.load_state_dict(load_checkpoint(run_dir / CHECKPOINT_FILE, map_location=device))
    return trainer


def prediction_frames(
    trainer: NCATrainer, images: torch.Tensor, labels: torch.Tensor, out_dir: str | Path, seed: int = 0
) -> list[Path]:
    """Write one PNG per step with the per-cell predictions of `images`.

    Args:
        trainer: a trainer holding the automaton.
        images: `(n, 784)` images, n at least 1.
        labels: `(n,)` true labels.
        out_dir: folder for `step01.png`, `step02.png`, ...; created when missing.
        seed: seeds the update masks.

    Returns:
        The paths written, in step order.

    Raises:
        UsageError: matplotlib is not installed, no image was given, or `out_dir` is a file.
    """
    try:
        from matplotlib import colormaps
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError:
        raise UsageError("plotting needs matplotlib, which is not installed; install it with: "
                         "pip install 'forwardforward[plot]'") from None
    if images.shape[0] < 1:
        raise UsageError("prediction_frames needs at least one image")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; give a folder for the frames")
    out.mkdir(parents=True, exist_ok=True)

    result = trainer.trajectory(images, torch.Generator().manual_seed(seed))
    cell_labels = result.cell_scores.argmax(2).numpy()  # (steps, n, H, W)
    image_labels = result.scores.argmax(2).numpy()  # (steps, n)
    alive = result.alive.numpy()
    colors = colormaps["tab10"](np.arange(10))[:, :3]  # (10, RGB)
    count, columns = images.shape[0], min(images.shape[0], 4)
    rows = -(-count // columns)
    paths = []
    for step in range(cell_labels.shape[0]):
        fig = Figure(figsize=(2.2 * columns, 2.4 * rows + 0.6), layout="constrained")
        fig.suptitle(f"{trainer.config.name}: per-cell predictions after step {step + 1} "
                     f"(colour: the cell's own prediction; white: empty)")
        axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
        for index, ax in enumerate(axes):
            ax.set_axis_off()
            if index >= count:
                continue
            picture = np.ones((*alive.shape[1:], 3))  # empty cells stay white
            live = alive[index]
            picture[live] = colors[cell_labels[step, index][live] % 10]
            ax.imshow(picture, interpolation="nearest")
            ax.set_title(f"true {int(labels[index])}, predicted {int(image_labels[step, index])}", fontsize=9)
        handles = [Patch(color=colors[label], label=str(label)) for label in range(10)]
        fig.legend(handles=handles, loc="outside lower center", ncols=10, title="cell's predicted label")
        path = out / f"step{step + 1:02d}.png"
        fig.savefig(path, dpi=DPI)
        paths.append(path)
    return paths


def write_prediction_frames(
    run_dir: str | Path, out_dir: str | Path, count: int = DEFAULT_IMAGES, data_dir: str | None = None
) -> list[Path]:
    """Write the per-step frames of the first `count` test images of an NCA run.

    Raises:
        UsageError: see `load_trained` and `prediction_frames`, or `count` below 1.
        DataError: missing or corrupt data.
    """
    if count < 1:
        raise UsageError(f"count must be at least 1, got {count}")
    trainer = load_trained(run_dir, data_dir)
    images, labels = trainer.data.eval_splits["test"]
    return prediction_frames(trainer, images[:count], labels[:count], out_dir)
