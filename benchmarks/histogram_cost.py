"""Estimate the share of a training batch spent on goodness histograms, with mnist-quick shapes.

Times `Trainer.train_batch` on random (100, 784) batches with the histograms on and off, in
alternating blocks of 20 batches, so that load from other processes hits both alike. Off skips
both the binning and the goodness recomputed for it. Prints the median time per batch of each.

Usage: OMP_NUM_THREADS=1 python -m benchmarks.histogram_cost
"""

from __future__ import annotations

import statistics
import time

import torch

from forwardforward.config import load_config
from forwardforward.training.trainer import Trainer, TrainingData

BATCH = 100
BATCHES_PER_BLOCK = 20
BLOCKS = 15


def main() -> None:
    """Print the median time per batch with and without histograms, and the difference."""
    torch.manual_seed(0)
    config = load_config("mnist-quick", ["train.device='cpu'"])
    images = torch.rand(10 * BATCH, 784)  # (samples, features), values like normalised pixels
    labels = torch.randint(0, 10, (10 * BATCH,))
    trainer = Trainer(config, TrainingData(images, labels, {}, 10), torch.device("cpu"))
    real_add = trainer.histograms.add
    real_goodness = [block.goodness for block in trainer.network.blocks]

    def set_histograms(enabled: bool) -> None:
        trainer.histograms.add = real_add if enabled else (lambda pos, neg: None)
        for block, goodness in zip(trainer.network.blocks, real_goodness):
            # A view in place of the goodness costs nothing and is never read when disabled.
            block.goodness = goodness if enabled else (lambda activity: activity[:, 0])

    def time_block(enabled: bool) -> float:
        set_histograms(enabled)
        start = time.perf_counter()
        for b in range(BATCHES_PER_BLOCK):
            rows = slice((b % 10) * BATCH, (b % 10 + 1) * BATCH)
            trainer.train_batch(images[rows], labels[rows], None)
        return (time.perf_counter() - start) / BATCHES_PER_BLOCK

    time_block(True)  # warm-up
    time_block(False)
    with_histograms, without = [], []
    for _ in range(BLOCKS):
        with_histograms.append(time_block(True))
        without.append(time_block(False))
    on, off = statistics.median(with_histograms), statistics.median(without)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads: per batch with histograms "
          f"{1e3 * on:.2f} ms, without {1e3 * off:.2f} ms, {100 * (on / off - 1):.1f} % more")


if __name__ == "__main__":
    main()
