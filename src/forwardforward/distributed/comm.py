"""torch.distributed with a timeout on every operation and errors that name the ranks involved.

Gloo runs on CPU and NCCL on CUDA devices. Every send, receive and collective waits at most
`timeout` and turns a failure into `DistributedError`. With gloo, a rank that dies closes its
connections, so its peers fail at their next operation with it instead of waiting for the timeout.
"""

from __future__ import annotations

import datetime
import os
import time
from collections import deque
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist

from ..errors import ForwardForwardError, TrainingError, UsageError


# Sends in flight before `send` waits for the oldest. It bounds how far a stage runs ahead of
# the stage above it, and the memory the queued activities take.
MAX_SENDS_IN_FLIGHT = 8


class DistributedError(TrainingError):
    """A send, receive or collective failed or timed out: a rank died, hung or is unreachable."""


def launch_environment() -> tuple[int, int, int]:
    """Read `RANK`, `WORLD_SIZE` and `LOCAL_RANK` as torchrun sets them.

    Raises:
        UsageError: the variables are missing or invalid, as when the command was started
            without torchrun.
    """
    try:
        rank = int(os.environ["RANK"])
        world_size = int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except KeyError as exc:
        raise UsageError(
            f"--parallel needs the environment that torchrun sets ({exc.args[0]} is missing); launch "
            "with: torchrun --nproc-per-node N -m forwardforward train --parallel pipeline ..."
        ) from None
    except ValueError:
        raise UsageError(
            f"RANK={os.environ.get('RANK')!r} and WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} must be "
            "integers; launch with torchrun"
        ) from None
    if not 0 <= rank < world_size:
        raise UsageError(f"RANK={rank} is outside 0..{world_size - 1} (WORLD_SIZE={world_size})")
    return rank, world_size, local_rank


class Communicator:
    """The process group of one job, with timed operations and a queue of pending sends.

    Args:
        rank: this process's rank.
        world_size: number of processes.
        device: where the tensors live; `cuda` selects NCCL, anything else gloo.
        timeout_s: maximum wait of any one operation, in seconds.

    Raises:
        DistributedError: the process group could not be set up in time.
    """

    def __init__(self, rank: int, world_size: int, device: torch.device, timeout_s: float) -> None:
        if timeout_s <= 0:
            raise UsageError(f"--timeout must be positive, got {timeout_s}")
        self.rank = rank
        self.world_size = world_size
        self.device = device
        self.timeout = datetime.timedelta(seconds=timeout_s)
        # NOTE: the NCCL path (CUDA tensors, one GPU per local rank) has not been run; only
        # gloo on CPU is tested. NCCL reports a timeout by aborting the process from its
        # watchdog rather than by raising from wait().
        self.backend = "nccl" if device.type == "cuda" else "gloo"
        self.wait_s = 0.0  # time spent blocked in communication, reset by the caller
        self._pending: deque[tuple[Any, torch.Tensor]] = deque()
        if device.type == "cuda":
            torch.cuda.set_device(device)  # NCCL's object broadcast uses the current device
        try:
            dist.init_process_group(
                self.backend, rank=rank, world_size=world_size, timeout=self.timeout,
                device_id=device if device.type == "cuda" else None,
            )
        except (RuntimeError, ValueError) as exc:
            raise DistributedError(
                f"rank {rank}: joining the process group of {world_size} processes failed or timed out "
                f"after {timeout_s:g} s: {_first_line(exc)}. Check that every process started and that "
                "MASTER_ADDR and MASTER_PORT are the same for all"
            ) from None

    # -- point to point ---------------------------------------------------------------------

    def send(self, tensor: torch.Tensor, dst: int, tag: int) -> None:
        """Start sending `tensor` to `dst`; waits for the oldest send when too many are pending."""
        tensor = tensor.contiguous()
        work = self._run(lambda: dist.isend(tensor, dst, tag=tag), f"sending to rank {dst}")
        self._pending.append((work, tensor))
        if len(self._pending) > MAX_SENDS_IN_FLIGHT:
            self._wait(self._pending.popleft()[0], f"sending to rank {dst}")

    def recv(self, shape: Sequence[int], src: int, tag: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Receive a tensor of known `shape` and `dtype` from `src`."""
        tensor = torch.empty(tuple(shape), dtype=dtype, device=self.device)
        work = self._run(lambda: dist.irecv(tensor, src, tag=tag), f"receiving from rank {src}")
        self._wait(work, f"receiving from rank {src}")
        return tensor

    def flush(self) -> None:
        """Wait until every pending send has completed."""
        while self._pending:
            self._wait(self._pending.popleft()[0], "completing a send")

    # -- collectives ------------------------------------------------------------------------

    def new_group(self, ranks: Sequence[int]) -> Any:
        """Create a subgroup; every rank must call this for every group, in the same order."""
        return self._run(lambda: dist.new_group(list(ranks), timeout=self.timeout), "creating a group")

    def all_reduce(self, tensor: torch.Tensor, group: Any = None) -> torch.Tensor:
        """Sum `tensor` in place over `group` (the whole job when None) and return it."""
        work = self._run(lambda: dist.all_reduce(tensor, group=group, async_op=True), "all-reduce")
        self._wait(work, "all-reduce")
        return tensor

    def all_gather(self, tensor: torch.Tensor, group: Any, size: int) -> list[torch.Tensor]:
        """Gather equally shaped tensors from the `size` ranks of `group`, in group-rank order."""
        out = [torch.empty_like(tensor) for _ in range(size)]
        work = self._run(lambda: dist.all_gather(out, tensor.contiguous(), group=group, async_op=True), "all-gather")
        self._wait(work, "all-gather")
        return out

    def barrier(self) -> None:
        """Wait until every rank has arrived, at most the timeout."""
        self.all_reduce(torch.zeros(1, device=self.device))

    def agree(self, action: Callable[[], Any]) -> Any:
        """Run `action` on rank 0 and return its result, or raise its error, on every rank.

        The result must be picklable. An error of type `ForwardForwardError` on rank 0 is
        raised again, with the same type and message, on every rank, so that no rank waits for
        a rank that has already given up.
        """
        message: list[Any] = [None]
        if self.rank == 0:
            try:
                message[0] = ("ok", action())
            except ForwardForwardError as exc:
                message[0] = ("error", type(exc), str(exc))
        start = time.perf_counter()
        try:
            dist.broadcast_object_list(message, src=0)
        except RuntimeError as exc:
            raise self._error("broadcasting from rank 0", exc, start) from None
        if message[0][0] == "error":
            _, kind, text = message[0]
            raise kind(text)
        return message[0][1]

    def close(self) -> None:
        """Leave the process group; pending sends are dropped."""
        self._pending.clear()
        if dist.is_initialized():
            dist.destroy_process_group()

    # -- errors -----------------------------------------------------------------------------

    def _run(self, start_operation: Callable[[], Any], what: str) -> Any:
        start = time.perf_counter()
        try:
            return start_operation()
        except RuntimeError as exc:
            raise self._error(what, exc, start) from None

    def _wait(self, work: Any, what: str) -> None:
        start = time.perf_counter()
        try:
            work.wait(self.timeout)
        except RuntimeError as exc:
            raise self._error(what, exc, start) from None
        finally:
            self.wait_s += time.perf_counter() - start

    def _error(self, what: str, exc: BaseException, start: float) -> DistributedError:
        elapsed = time.perf_counter() - start
        return DistributedError(
            f"rank {self.rank}: {what} failed after {elapsed:.1f} s (timeout "
            f"{self.timeout.total_seconds():g} s): {_first_line(exc)}. Another rank has probably "
            "died or hung; its own log names the cause"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
