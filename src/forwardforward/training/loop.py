"""One epoch of minibatches with a progress bar, shared by every trainer of the library."""

from __future__ import annotations

import math
import time
from typing import Callable

import torch
from tqdm import tqdm

from ..errors import TrainingError

# How often (in batches) the progress bar reads the loss back from the device.
PROGRESS_EVERY = 50


def check_finite(sums: torch.Tensor | None, epoch: int) -> None:
    """Raise `TrainingError` when a summed loss or statistic is NaN or infinite."""
    if sums is not None and not bool(torch.isfinite(sums).all()):
        raise TrainingError(
            f"a loss or goodness became NaN or infinite in epoch {epoch}; training stopped and "
            "the checkpoint of the last good epoch was kept. Lower optimizer.lr or check the data"
        )


def _first_entry(sums: torch.Tensor, batches: int) -> float:
    return sums[0].item() / batches


def run_epoch(
    step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    order: torch.Tensor,
    epoch: int,
    total_epochs: int,
    progress: bool = True,
    num_batches: int | None = None,
    progress_loss: Callable[[torch.Tensor, int], float] | None = None,
) -> tuple[torch.Tensor, int, float]:
    """Call `step` on every minibatch of `images[order]` and sum what it returns.

    Args:
        step: takes `(batch, features)` images and `(batch,)` labels and returns a 1-D tensor
            of detached statistics whose first entry is a loss (shown in the progress bar).
        images: `(n, features)`.
        labels: `(n,)`.
        batch_size: samples per minibatch; the last one may be smaller.
        order: `(n,)` permutation of the sample indices.
        epoch: 1-based epoch, for the progress bar and errors.
        total_epochs: for the progress bar.
        progress: show the progress bar.
        num_batches: minibatches to run; by default all, `ceil(n / batch_size)`. A trainer
            that drops a too-small last batch passes `n // batch_size`.
        progress_loss: maps the running sums and the number of minibatches so far to the
            loss shown in the progress bar. By default it is the mean of the first entry.

    Returns:
        `(sums, num_batches, elapsed_s)`: the statistics summed over minibatches, the number of
        minibatches and the wall time in seconds (after a device synchronisation).

    Raises:
        TrainingError: a statistic became NaN or infinite.
    """
    n = images.shape[0]
    if num_batches is None:
        num_batches = math.ceil(n / batch_size)
    if progress_loss is None:
        progress_loss = _first_entry
    sums = None
    start = time.perf_counter()
    bar = tqdm(total=num_batches, desc=f"epoch {epoch}/{total_epochs}", unit="batch",
               disable=not progress, leave=False, dynamic_ncols=True)
    for b in range(num_batches):
        index = order[b * batch_size : (b + 1) * batch_size]
        values = step(images[index], labels[index])
        sums = values if sums is None else sums + values
        if progress and ((b + 1) % PROGRESS_EVERY == 0 or b + 1 == num_batches):
            check_finite(sums, epoch)
            elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{progress_loss(sums, b + 1):.4f}",
                            samples_s=f"{min(n, (b + 1) * batch_size) / elapsed:.0f}")
        bar.update(1)
    bar.close()
    if images.device.type == "cuda":
        torch.cuda.synchronize(images.device)
    elapsed = time.perf_counter() - start
    check_finite(sums, epoch)
    return sums, num_batches, elapsed


def epoch_order(n: int, shuffle: bool, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Return the `(n,)` sample order of one epoch: a fresh permutation, or `0..n-1`."""
    if shuffle:
        return torch.randperm(n, generator=generator).to(device)
    return torch.arange(n, device=device)
