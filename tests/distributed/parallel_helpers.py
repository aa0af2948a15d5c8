"""Helpers that launch `forwardforward train --parallel ...` as torchrun does: one process per rank.

The processes rendezvous on 127.0.0.1 through a free port, use gloo on the loopback interface
and one thread each.
"""

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import torch

# Settings for a job of a few seconds: three layers of 32 units and 300 samples.
TINY_PARALLEL_OVERRIDES = (
    "model.hidden=[32,32,32]",
    "train.epochs=2",
    "train.batch_size=50",
    "train.eval_batch_size=100",
    "data.limit=300",
    "train.device='cpu'",
)
JOB_TIMEOUT_S = 120


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rank_env(rank, world_size, port):
    """Environment of one rank, as torchrun sets it, kept on the loopback interface."""
    env = dict(os.environ)
    env.update(
        RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1", FORWARDFORWARD_OFFLINE="1",
    )
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"
    env.pop("FORWARDFORWARD_DATA", None)
    return env


@dataclass
class RankResult:
    """Exit status and output of one rank."""

    code: int
    out: str
    err: str


def start_job(world_size, args):
    """Start every rank of `forwardforward train ARGS` and return the running processes."""
    port = free_port()
    command = [sys.executable, "-m", "forwardforward", "train", *[str(a) for a in args]]
    return [
        subprocess.Popen(command, env=rank_env(rank, world_size, port), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for rank in range(world_size)
    ]


def finish(processes, timeout=JOB_TIMEOUT_S):
    """Wait for every process and return their results; kill them all if one outlives `timeout`."""
    deadline = time.monotonic() + timeout
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=max(deadline - time.monotonic(), 0.1))
            results.append(RankResult(process.returncode, out, err))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return results


def run_job(world_size, args):
    """Run a whole job and return each rank's result."""
    return finish(start_job(world_size, args))


def set_options(assignments):
    """Turn KEY=VALUE assignments into repeated `--set` options."""
    return [part for assignment in assignments for part in ("--set", assignment)]


def load_run_checkpoint(run_dir):
    """The merged single-process checkpoint of a run directory."""
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)
