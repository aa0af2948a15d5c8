"""Measure peak training memory against depth: FF against backprop on the same network.

Each (method, depth) runs in a fresh subprocess. The network is `depth` fully connected ReLU
layers of `--width` units on 784 inputs, RMS-normalised input (FF also normalises between layers).

- `ff`: the real `Trainer` with random wrong-label negatives and no read-out, so a step keeps
  only one block's activations and gradients alive at a time.
- `backprop`: the library's backprop baseline (`forwardforward.baselines.BackpropNetwork`) of
  the same layers plus a linear softmax layer, trained end to end with cross-entropy and the
  same optimizer rule (`smoothed_sgd`), so every layer's activations and gradients are alive
  at once.

What is measured: the model's own state (weights and optimizer buffers) is the same for both
methods and is reported apart as `state_mb`. `working_mb` is the memory a training step needs
on top of that state: on CPU the rise of the process's peak resident set (VmHWM, reset through
/proc/self/clear_refs) over its resident set after a warm-up step, with glibc's mmap threshold
fixed at 64 KiB so that freed tensors go back to the system; on CUDA the rise of
`torch.cuda.max_memory_allocated` over `torch.cuda.memory_allocated` after the warm-up step.

Usage: python -m benchmarks.memory_vs_depth [--depths 2 4 8 16 32] [--width 2000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from forwardforward.baselines import BackpropNetwork
from forwardforward.config import load_config
from forwardforward.optim import OptimizerConfig, build_optimizer
from forwardforward.training.trainer import Trainer, TrainingData

from .common import base_parser, machine_record, run_child, setup, write_results

_MIB = 2**20


def _status_kib(field: str) -> int:
    """Read one `Vm...` field of /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} is missing from /proc/self/status; this benchmark needs Linux on CPU")


class MemoryProbe:
    """Peak memory above a baseline, from the CUDA allocator or from the process's resident set."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.baseline = 0

    def start(self) -> None:
        """Take the current memory as the baseline and reset the peak."""
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.baseline = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
            self.baseline = _status_kib("VmRSS") * 1024

    def peak_above_baseline(self) -> int:
        """Bytes of the highest memory since `start`, minus the baseline."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device) - self.baseline
        return _status_kib("VmHWM") * 1024 - self.baseline


def _state_bytes(modules: list[torch.nn.Module], optimizers: list[torch.optim.Optimizer]) -> int:
    params = sum(p.numel() * p.element_size() for m in modules for p in m.parameters())
    buffers = sum(
        t.numel() * t.element_size()
        for opt in optimizers for state in opt.state.values() for t in state.values() if torch.is_tensor(t)
    )
    return params + buffers


def run_ff(depth: int, width: int, batch: int, steps: int, device: torch.device, seed: int) -> dict:
    """Train `steps` FF batches after a warm-up one; return state and working memory in bytes."""
    config = load_config("hinton-matlab-mnist", [
        f"model.hidden=[{', '.join([str(width)] * depth)}]", "readout.enabled=false",
        "negatives.kind=random", f"train.batch_size={batch}", f"train.seed={seed}",
        f"train.skip_first={min(1, depth - 1)}",
    ])
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch * (steps + 1), 784, generator=generator).to(device)
    labels = torch.randint(0, 10, (images.shape[0],), generator=generator).to(device)
    trainer = Trainer(config, TrainingData(images, labels, {}, 10), device)
    trainer.train_batch(images[:batch], labels[:batch], None)  # allocates the optimizer buffers

    probe = MemoryProbe(device)
    probe.start()
    for step in range(1, steps + 1):
        trainer.train_batch(images[step * batch : (step + 1) * batch], labels[step * batch : (step + 1) * batch], None)
    working = probe.peak_above_baseline()
    blocks = list(trainer.network.blocks)
    return {"state": _state_bytes(blocks, [b.optimizer for b in blocks]), "working": working}


def run_backprop(depth: int, width: int, batch: int, steps: int, device: torch.device, seed: int) -> dict:
    """Train `steps` backprop batches after a warm-up one; return state and working memory in bytes."""
    torch.manual_seed(seed)
    config = load_config("hinton-matlab-mnist", [f"model.hidden=[{', '.join([str(width)] * depth)}]"])
    model = BackpropNetwork.from_config(config.model, (1, 1, 784), 10).to(device)
    optimizer = build_optimizer(model, OptimizerConfig())
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch * (steps + 1), 784, generator=generator).to(device)
    labels = torch.randint(0, 10, (images.shape[0],), generator=generator).to(device)

    def step(index: int) -> None:
        x, y = images[index * batch : (index + 1) * batch], labels[index * batch : (index + 1) * batch]
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)  # as the FF blocks do: no gradient outlives its step

    step(0)
    probe = MemoryProbe(device)
    probe.start()
    for index in range(1, steps + 1):
        step(index)
    working = probe.peak_above_baseline()
    return {"state": _state_bytes([model], [optimizer]), "working": working}


def child(args) -> None:
    """Measure one (method, depth) in this process and print its row as JSON."""
    device = setup(args)
    run = run_ff if args.method == "ff" else run_backprop
    measured = run(args.depth, args.width, args.batch, args.steps, device, args.seed)
    row = {
        "method": args.method, "depth": args.depth, "width": args.width, "batch": args.batch,
        "state_mb": measured["state"] / _MIB, "working_mb": measured["working"] / _MIB,
        **machine_record(device, torch.float32, args.seed),
    }
    print(json.dumps(row))


def measure(method: str, depth: int, width: int, batch: int, steps: int, device: str, seed: int,
            threads: int | None = None) -> dict:
    """Run one measurement in a fresh subprocess and return its row.

    Raises:
        RuntimeError: the subprocess failed; its stderr is in the message.
    """
    command = [sys.executable, "-m", "benchmarks.memory_vs_depth", "--child", "--method", method,
               "--depth", str(depth), "--width", str(width), "--batch", str(batch),
               "--steps", str(steps), "--device", device, "--seed", str(seed)]
    if threads is not None:
        command += ["--threads", str(threads)]
    return run_child(command, f"memory measurement of {method} at depth {depth}")


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    parser.add_argument("--width", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=2, help="measured steps after the warm-up step")
    parser.add_argument("--methods", nargs="+", default=["ff", "backprop"], choices=["ff", "backprop"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=["ff", "backprop"], help=argparse.SUPPRESS)
    parser.add_argument("--depth", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return

    rows = []
    for method in args.methods:
        for depth in args.depths:
            row = measure(method, depth, args.width, args.batch, args.steps, args.device, args.seed, args.threads)
            print(f"{method} depth {depth}: working {row['working_mb']:.1f} MiB, state {row['state_mb']:.1f} MiB", flush=True)
            rows.append(row)
    for row in rows:
        first = next(r for r in rows if r["method"] == row["method"])
        row["working_vs_shallowest"] = row["working_mb"] / first["working_mb"]
    write_results("memory_vs_depth", rows, args.out, [
        "method", "depth", "width", "batch", "state_mb", "working_mb", "working_vs_shallowest", "device",
    ])


if __name__ == "__main__":
    main()
