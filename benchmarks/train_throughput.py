"""Measure FF training throughput and compare it with the matrix-multiply limit at the same shapes.

For each Hinton recipe, batch size and speed option, the script times whole training epochs of
the real `Trainer` (shuffling, label overlay, hard negatives from the read-out, peer
normalisation, the per-layer optimizers and the read-out) over `--samples` training images, after
one warm-up epoch that also pays any compilation. The FLOP count of a batch is the sum of its
matrix products, derived from the layer shapes by `common.ff_training_gemms`:

    per block (in, out): neutral pass 2 B in out + positive and negative pass 2 (2B) in out
                         + weight gradient 2 (2B) in out, with B the batch size
    read-out (features, classes): forward and weight gradient, 2 B features classes each

The same products are then timed alone, back to back, in the same process and dtype; their
throughput is the "GEMM limit" and `fraction_of_gemm` is achieved FLOP/s over that limit.

Usage: python -m benchmarks.train_throughput [--samples 10000] [--quick]
"""

from __future__ import annotations

import os
import time

import torch

from forwardforward.config import load_config
from forwardforward.errors import DataError
from forwardforward.training.trainer import Trainer, TrainingData

from .common import base_parser, ff_training_gemms, machine_record, setup, time_gemms, write_results

# (recipe, batch size, precision, compile) rows of the full suite.
CASES = [
    ("hinton-matlab-mnist", 100, "float32", False),
    ("hinton-matlab-mnist", 100, "float32", True),
    ("hinton-matlab-mnist", 100, "bfloat16", False),
    ("hinton-matlab-mnist", 1000, "float32", False),
    ("hinton-matlab-mnist", 1000, "bfloat16", False),
    ("hinton-mnist-4x2000", 100, "float32", False),
    ("hinton-mnist-4x2000", 100, "bfloat16", False),
    ("hinton-mnist-4x2000", 1000, "float32", False),
    ("hinton-mnist-4x2000", 1000, "bfloat16", False),
]
QUICK_CASES = [("hinton-matlab-mnist", 100, "float32", False)]


def training_images(samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Return MNIST training images and labels when the data folder has them, else uniform noise.

    The matrix products cost the same for any pixel values, so noise measures the same speed.
    """
    from forwardforward.data import load_dataset, resolve_data_dir

    try:
        splits = load_dataset("mnist", resolve_data_dir(None), split="hinton", download=False)
        return splits.train.images[:samples], splits.train.labels[:samples], "mnist"
    except (DataError, RuntimeError):
        generator = torch.Generator().manual_seed(seed)
        images = torch.rand(samples, 784, generator=generator)
        labels = torch.randint(0, 10, (samples,), generator=generator)
        return images, labels, "uniform noise"


def measure_case(recipe: str, batch: int, precision: str, compiled: bool, images, labels,
                 device: torch.device, epochs: int, seed: int) -> dict:
    """Time `epochs` training epochs of one configuration and compare with its GEMM limit."""
    config = load_config(recipe, [
        f"train.batch_size={batch}", f"train.precision={precision}",
        f"train.compile={'true' if compiled else 'false'}", f"train.seed={seed}", "train.device=" + str(device),
    ])
    data = TrainingData(images.to(device), labels.to(device), {}, 10)
    trainer = Trainer(config, data, device)
    trainer.train_epoch(progress=False)  # warm-up, and compilation when enabled
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        trainer.train_epoch(progress=False)
        times.append(time.perf_counter() - start)
    seconds = min(times)

    hidden = list(config.model.hidden)
    gemms = ff_training_gemms(images.shape[1], hidden, batch, skip_first=config.train.skip_first)
    batches = images.shape[0] // batch
    flops = sum(g.flops for g in gemms) * batches
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    gemm_rate = sum(g.flops for g in gemms) / sum(time_gemms(gemms, device, dtype))
    achieved = flops / seconds
    return {
        "recipe": recipe, "hidden": "x".join(map(str, hidden)), "batch": batch,
        "precision": precision, "compile": compiled,
        "samples_per_s": images.shape[0] / seconds,
        "epoch_s_50k": 50_000 * seconds / images.shape[0],
        "gflop_per_sample": flops / images.shape[0] / 1e9,
        "achieved_gflop_per_s": achieved / 1e9,
        "gemm_limit_gflop_per_s": gemm_rate / 1e9,
        "fraction_of_gemm": achieved / gemm_rate,
        "timed_epochs": epochs,
        **machine_record(device, dtype, seed),
    }


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000,
                        help="training images per timed epoch (default: 10000)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per case; the fastest counts (default: 2)")
    parser.add_argument("--quick", action="store_true", help="only the float32 3 x 1000 batch-100 case")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile cases")
    args = parser.parse_args(argv)
    device = setup(args)
    images, labels, source = training_images(args.samples, args.seed)

    rows = []
    for recipe, batch, precision, compiled in QUICK_CASES if args.quick else CASES:
        if compiled and args.no_compile:
            continue
        row = measure_case(recipe, batch, precision, compiled, images, labels, device, args.epochs, args.seed)
        row["data"] = source
        print(f"{recipe} batch {batch} {precision}{' compiled' if compiled else ''}: "
              f"{row['samples_per_s']:.0f} samples/s, {row['fraction_of_gemm']:.2f} of the GEMM limit", flush=True)
        rows.append(row)
    write_results("train_throughput", rows, args.out, [
        "hidden", "batch", "precision", "compile", "samples_per_s", "epoch_s_50k",
        "achieved_gflop_per_s", "gemm_limit_gflop_per_s", "fraction_of_gemm", "load_avg_1min",
    ])


if __name__ == "__main__":
    os.environ.setdefault("FORWARDFORWARD_OFFLINE", "1")
    main()
