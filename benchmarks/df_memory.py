"""Measure peak training memory of Distance-Forward against backprop on the same network.

Each method runs in a fresh subprocess on random images of the recipe's data shape (1 x 28 x 28
for the MNIST recipes, 3 x 32 x 32 for CIFAR-10), with the recipe's network and batch size:

- `greedy`, `overlap` (DF-O), `feedback` (DF-R): the real `DFTrainer` step of that
  collaboration;
- `backprop`: the recipe's backprop baseline (`method = "backprop"`), the same blocks plus a
  linear softmax layer trained end to end with cross-entropy.

`working_mb` is the memory a training step needs on top of the weights and optimizer state,
measured as in `benchmarks.memory_vs_depth`. On CPU it is the rise of the process's peak
resident set over its level after a warm-up step, and on CUDA the rise of
`torch.cuda.max_memory_allocated`.
`state_mb` (weights, centroids, feedback weights and Adam buffers) is reported apart.

NOTE: every collaboration here builds the whole forward graph of a batch before its backward
pass, as `DFTrainer` does, so the DF rows measure that trainer, not the least memory a
layer-by-layer schedule could reach.

Usage: python -m benchmarks.df_memory [--recipe df-mnist] [--steps 2]
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from forwardforward.config import load_config
from forwardforward.training.trainer import TrainingData
from forwardforward.variants.distance_forward import make_trainer

from .common import base_parser, machine_record, run_child, setup, write_results
from .memory_vs_depth import _MIB, MemoryProbe, _state_bytes

METHODS = ("backprop", "greedy", "overlap", "feedback")
_IMAGE_SHAPES = {"mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32), "cifar10-jpeg": (3, 32, 32)}


def run_method(recipe: str, method: str, steps: int, batch: int | None, device: torch.device, seed: int) -> dict:
    """Train `steps` batches of `method` after a warm-up one; return state and working memory in bytes."""
    overrides = [f"train.seed={seed}", "data.jitter=0"]
    overrides += ["method='backprop'"] if method == "backprop" else [f"model.collaboration='{method}'"]
    if batch is not None:
        overrides.append(f"train.batch_size={batch}")
    config = load_config(recipe, overrides)
    shape = _IMAGE_SHAPES[config.data.dataset]
    size = config.train.batch_size
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(size * (steps + 1), shape[0] * shape[1] * shape[2], generator=generator).to(device)
    labels = torch.randint(0, 10, (images.shape[0],), generator=generator).to(device)
    trainer = make_trainer(config, TrainingData(images, labels, {}, 10, shape), device)
    if method == "backprop":
        step, modules, optimizer = trainer._step, [trainer.model], trainer.optimizer
    else:
        step, modules, optimizer = trainer.train_batch, [trainer.network], trainer.optimizer
    step(images[:size], labels[:size])  # allocates the optimizer buffers

    probe = MemoryProbe(device)
    probe.start()
    for index in range(1, steps + 1):
        step(images[index * size : (index + 1) * size], labels[index * size : (index + 1) * size])
        optimizer.zero_grad(set_to_none=True)  # no gradient outlives its step, for every method alike
    working = probe.peak_above_baseline()
    buffers = sum(b.numel() * b.element_size() for m in modules for b in m.buffers())
    return {"state": _state_bytes(modules, [optimizer]) + buffers, "working": working, "batch": size}


def child(args) -> None:
    """Measure one method in this process and print its row as JSON."""
    device = setup(args)
    measured = run_method(args.recipe, args.method, args.steps, args.batch, device, args.seed)
    row = {"recipe": args.recipe, "method": args.method, "batch": measured["batch"],
           "state_mb": measured["state"] / _MIB, "working_mb": measured["working"] / _MIB,
           **machine_record(device, torch.float32, args.seed)}
    print(json.dumps(row))


def measure(recipe: str, method: str, steps: int, batch: int | None, device: str, seed: int,
            threads: int | None = None) -> dict:
    """Run one measurement in a fresh subprocess and return its row.

    Raises:
        RuntimeError: the subprocess failed; its stderr is in the message.
    """
    command = [sys.executable, "-m", "benchmarks.df_memory", "--child", "--recipe", recipe, "--method", method,
               "--steps", str(steps), "--device", device, "--seed", str(seed)]
    if batch is not None:
        command += ["--batch", str(batch)]
    if threads is not None:
        command += ["--threads", str(threads)]
    return run_child(command, f"memory measurement of {method} on {recipe}")


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["df-mnist", "df-fashion-mnist", "df-cifar10"])
    parser.add_argument("--steps", type=int, default=2, help="measured steps after the warm-up step")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the recipe's)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--recipe", help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return

    rows = []
    for recipe in args.recipes:
        recipe_rows = [measure(recipe, method, args.steps, args.batch, args.device, args.seed, args.threads)
                       for method in args.methods]
        backprop = next((r for r in recipe_rows if r["method"] == "backprop"), None)
        for row in recipe_rows:
            row["working_vs_backprop"] = None if backprop is None else row["working_mb"] / backprop["working_mb"]
            print(f"{recipe} {row['method']}: working {row['working_mb']:.1f} MiB, state {row['state_mb']:.1f} MiB",
                  flush=True)
        rows += recipe_rows
    write_results("df_memory", rows, args.out, [
        "recipe", "method", "batch", "state_mb", "working_mb", "working_vs_backprop", "device",
    ])


if __name__ == "__main__":
    main()
