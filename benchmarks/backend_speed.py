"""Measure training speed of the PyTorch and JAX backends side by side on one recipe.

Usage (under the shared CPU lock, from the repository root)::

    python -m benchmarks.backend_speed --recipe hinton-matlab-mnist --epochs 3 \
        --data-dir ../shared/data

For each backend it builds the trainer of `forwardforward train`, runs `--epochs` training
epochs without evaluation and prints one JSON line per epoch with `samples_per_s`. For JAX it
first times the compilation of the training step alone (`lower` plus `compile`), so that the
first epoch's number still contains the cost of filling the jit cache but the compile time is
also reported on its own. The summary line gives the median over epochs 2 and later (all
epochs when only one was run), together with the versions, thread counts and commit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from forwardforward.config import load_config
from forwardforward.training.run import build_trainer, git_commit, load_training_data


def _compile_time_s(trainer) -> float:
    # Lower and compile the step the trainer calls, with the arguments of its first batch.
    import jax

    batch = trainer.config.train.batch_size
    index = np.arange(batch, dtype=np.int32)
    start = time.perf_counter()
    trainer.model.train_step_at.lower(
        trainer.state, trainer.images, trainer.labels, index, trainer.key, np.int32(0)
    ).compile()
    jax.block_until_ready(trainer.state)
    return time.perf_counter() - start


def measure(backend: str, recipe: str, epochs: int, data_dir: str | None) -> dict:
    """Train `epochs` epochs with one backend and return per-epoch and median samples/s."""
    config = load_config(recipe, [f"train.backend='{backend}'", "train.device='cpu'"])
    data = load_training_data(config, data_dir, torch.device("cpu"))
    trainer = build_trainer(config, data, torch.device("cpu"), "cpu")
    result: dict = {"backend": backend, "recipe": recipe}
    if backend == "jax":
        result["compile_time_s"] = _compile_time_s(trainer)
    rates = []
    for _ in range(epochs):
        record = trainer.train_epoch(progress=False)
        rates.append(record["samples_per_s"])
        print(json.dumps({"backend": backend, "epoch": record["epoch"],
                          "epoch_time_s": record["epoch_time_s"],
                          "samples_per_s": record["samples_per_s"]}), flush=True)
    result["samples_per_s_by_epoch"] = rates
    result["median_samples_per_s"] = statistics.median(rates[1:] if len(rates) > 1 else rates)
    return result


def main() -> None:
    """Parse options, measure both backends and print a JSON summary line per backend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="hinton-matlab-mnist")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per backend")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--backends", default="torch,jax", help="comma-separated, in order of measurement")
    args = parser.parse_args()

    environment = {
        "commit": git_commit(), "python": platform.python_version(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "dtype": "float32",
    }
    backends = args.backends.split(",")
    if len(backends) > 1:
        # One process per backend: XLA's and PyTorch's thread pools in one process slow each
        # other down.
        for backend in backends:
            command = [sys.executable, "-m", "benchmarks.backend_speed", "--recipe", args.recipe,
                       "--epochs", str(args.epochs), "--backends", backend]
            if args.data_dir is not None:
                command += ["--data-dir", args.data_dir]
            subprocess.run(command, check=True)
        return
    result = measure(backends[0], args.recipe, args.epochs, args.data_dir)
    if backends[0] == "jax":
        import jax

        environment["jax"] = jax.__version__
        environment["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    print(json.dumps({**result, **environment}), flush=True)


if __name__ == "__main__":
    main()
