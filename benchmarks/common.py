"""Shared parts of the benchmark scripts: timing, the machine record, FF matrix shapes, output.

Every benchmark row carries the torch version, device, dtype, thread count, seed and commit.
Timers exclude warm-up calls and synchronise the device before they are read.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from forwardforward import __version__
from forwardforward.training.run import git_commit

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def synchronize(device: torch.device) -> None:
    """Wait for queued work on `device`, so that a timer read afterwards is honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device, warmup: int = 3, repeat: int = 10) -> float:
    """Return the median wall time in seconds of `fn()` over `repeat` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def machine_record(device: torch.device, dtype: torch.dtype, seed: int) -> dict:
    """Fields that every row records: software, hardware, dtype, threads, seed and commit."""
    record = {
        "forwardforward_version": __version__,
        "commit": git_commit(),
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "seed": seed,
    }
    if hasattr(os, "getloadavg"):
        # Other processes on the machine slow every timer; the load average shows whether any ran.
        record["load_avg_1min"] = round(os.getloadavg()[0], 2)
    return record


@dataclass(frozen=True)
class Gemm:
    """One matrix product `(m, k) @ (k, n)` of an FF training or prediction step."""

    m: int
    k: int
    n: int
    role: str

    @property
    def flops(self) -> int:
        """Multiply-adds counted as two floating-point operations."""
        return 2 * self.m * self.k * self.n


def ff_training_gemms(
    in_features: int, hidden: Sequence[int], batch: int, num_classes: int = 10,
    skip_first: int = 1, readout: bool = True,
) -> list[Gemm]:
    """List the matrix products of one simultaneous-schedule FF training batch.

    Per block of shape `(in_l, out_l)`: the neutral-label pass `(batch, in_l) @ (in_l, out_l)`
    (only with the read-out, whose logits pick the hard negatives), the positive and negative
    pass as one `(2 batch, in_l) @ (in_l, out_l)` product, and the weight gradient
    `(out_l, 2 batch) @ (2 batch, in_l)`. Inputs are detached, so no gradient with respect to
    the block's input is computed. The read-out adds its forward pass and weight gradient.

    Returns:
        The products in the order the step runs them.
    """
    gemms = []
    widths = [in_features, *hidden]
    if readout:
        for k, n in zip(widths[:-1], widths[1:]):
            gemms.append(Gemm(batch, k, n, "neutral forward"))
        features = sum(hidden[skip_first:])
        gemms.append(Gemm(batch, features, num_classes, "read-out forward"))
        gemms.append(Gemm(num_classes, batch, features, "read-out weight gradient"))
    for k, n in zip(widths[:-1], widths[1:]):
        gemms.append(Gemm(2 * batch, k, n, "positive + negative forward"))
        gemms.append(Gemm(n, 2 * batch, k, "weight gradient"))
    return gemms


def time_gemms(gemms: Sequence[Gemm], device: torch.device, dtype: torch.dtype, repeat: int = 20) -> list[float]:
    """Time each product alone on random operands; return seconds per product, in order."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    seconds = []
    for gemm in gemms:
        a = torch.randn(gemm.m, gemm.k, generator=generator).to(device, dtype)
        b = torch.randn(gemm.k, gemm.n, generator=generator).to(device, dtype)
        seconds.append(time_call(lambda: torch.mm(a, b), device, warmup=3, repeat=repeat))
    return seconds


def run_child(command: list[str], description: str) -> dict:
    """Run one benchmark child process from the repository root and return its last JSON line.

    The child gets `MALLOC_MMAP_THRESHOLD_=65536`, so freed tensors go back to the system and
    its peak resident memory follows the memory it uses.

    Raises:
        RuntimeError: the child exited with an error; its stderr is in the message.
    """
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parent.parent)
    if result.returncode != 0:
        raise RuntimeError(f"{description} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def base_parser(description: str) -> argparse.ArgumentParser:
    """Options that every benchmark takes: device, threads, seed and the output folder."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's own choice)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and data (default: 0)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR,
                        help=f"folder for the JSON file (default: {RESULTS_DIR})")
    return parser


def setup(args: argparse.Namespace) -> torch.device:
    """Apply the common options; return the device.

    Raises:
        SystemExit: CUDA was requested but is not available.
    """
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device} was requested but CUDA is not available")
    torch.manual_seed(args.seed)
    return device


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """Format the given columns of `rows` as a markdown table; floats get 3 significant digits."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(column, "")) for column in columns) + " |")
    return "\n".join(lines)


def write_results(name: str, rows: list[dict], out_dir: Path, columns: Sequence[str]) -> Path:
    """Print `rows` as a table and write them to `out_dir/NAME.json`; return the JSON path."""
    print(markdown_table(rows, columns))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {path}")
    return path
