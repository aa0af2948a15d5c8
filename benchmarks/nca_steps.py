"""Measure the cellular automaton's training cost against its number of steps: FF against backprop.

Each (method, steps) pair runs in a fresh subprocess on real MNIST batches, with the recipe
`nca-mnist-selfclassify` (FF: layer-local losses at every step on detached states) or
`nca-mnist-bptt` (the same rule with a per-cell read-out, backpropagated through all steps).
After one warm-up batch, `--batches` batches are timed, and `s_per_batch` is their median.
`working_mb` is the rise of the peak memory over the memory after warm-up, read by the probe of
`benchmarks.memory_vs_depth` (VmHWM on CPU, the CUDA allocator's peak on a GPU).

Usage: python -m benchmarks.nca_steps [--steps 2 4 8 16 32] [--batch 100] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from forwardforward.config import load_config
from forwardforward.training.run import load_training_data
from forwardforward.variants.nca_trainer import NCATrainer

from .common import base_parser, machine_record, run_child, setup, synchronize, write_results
from .memory_vs_depth import MemoryProbe

RECIPES = {"ff": "nca-mnist-selfclassify", "backprop": "nca-mnist-bptt"}
_MIB = 2**20


def child(args: argparse.Namespace) -> None:
    """Measure one (method, steps) pair in this process and print its row as JSON."""
    device = setup(args)
    count = args.batch * (args.batches + 1)
    config = load_config(RECIPES[args.method], [
        f"train.steps={args.step_count}", f"train.batch_size={args.batch}", f"data.train_limit={count}",
        "data.eval_limit=1", f"train.seed={args.seed}",
    ])
    trainer = NCATrainer(config, load_training_data(config, args.data_dir, device), device)
    images, labels = trainer.data.train_images, trainer.data.train_labels
    trainer.train_batch(images[: args.batch], labels[: args.batch])  # allocates optimizer buffers

    probe = MemoryProbe(device)
    probe.start()
    times = []
    for index in range(1, args.batches + 1):
        batch = slice(index * args.batch, (index + 1) * args.batch)
        start = time.perf_counter()
        trainer.train_batch(images[batch], labels[batch])
        synchronize(device)
        times.append(time.perf_counter() - start)
    working = probe.peak_above_baseline()
    times.sort()
    row = {
        "method": args.method, "steps": args.step_count, "batch": args.batch,
        "s_per_batch": times[len(times) // 2], "working_mb": working / _MIB,
        **machine_record(device, torch.float32, args.seed),
    }
    print(json.dumps(row))


def measure(args: argparse.Namespace, method: str, steps: int) -> dict:
    """Run one measurement in a fresh subprocess and return its row.

    Raises:
        RuntimeError: the subprocess failed; its stderr is in the message.
    """
    command = [sys.executable, "-m", "benchmarks.nca_steps", "--child", "--method", method,
               "--step-count", str(steps), "--batch", str(args.batch), "--batches", str(args.batches),
               "--device", args.device, "--seed", str(args.seed)]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    if args.data_dir is not None:
        command += ["--data-dir", args.data_dir]
    return run_child(command, f"measurement of {method} at {steps} steps")


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[2, 4, 8, 16, 32], help="step counts T to measure")
    parser.add_argument("--batch", type=int, default=100, help="images per batch (default: 100)")
    parser.add_argument("--batches", type=int, default=3, help="timed batches after the warm-up one")
    parser.add_argument("--methods", nargs="+", default=["ff", "backprop"], choices=sorted(RECIPES))
    parser.add_argument("--data-dir", default=None, help="data folder (default: $FORWARDFORWARD_DATA)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=sorted(RECIPES), help=argparse.SUPPRESS)
    parser.add_argument("--step-count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return

    rows = []
    for method in args.methods:
        for steps in args.steps:
            row = measure(args, method, steps)
            print(f"{method} T={steps}: {row['s_per_batch']:.3f} s/batch, working {row['working_mb']:.1f} MiB",
                  flush=True)
            rows.append(row)
    write_results("nca_steps", rows, args.out, ["method", "steps", "batch", "s_per_batch", "working_mb", "threads"])


if __name__ == "__main__":
    main()
