"""How the ranks of a job split into pipeline stages and data-parallel replicas.

Rank `r` is replica `r % replicas` of stage `r // replicas`, so the replicas of one stage have
consecutive ranks. torchrun numbers the processes of one machine consecutively, so the replicas
of a stage share a machine whenever `replicas` divides the processes per machine. That is where
they belong, because their gradient all-reduce moves whole weight matrices, far more bytes than
the activities that cross a stage boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..errors import UsageError

PARALLEL_MODES = ("pipeline", "data", "both")


@dataclass(frozen=True)
class ParallelLayout:
    """Stages, replicas and the blocks each stage owns.

    Attributes:
        stages: number of pipeline stages.
        replicas: data-parallel replicas per stage.
        bounds: `(first, end)` block indices of each stage, end exclusive, bottom stage first.
    """

    stages: int
    replicas: int
    bounds: tuple[tuple[int, int], ...]

    @property
    def world_size(self) -> int:
        """Number of processes the layout needs."""
        return self.stages * self.replicas

    def stage_of(self, rank: int) -> int:
        """Pipeline stage of `rank`."""
        return rank // self.replicas

    def replica_of(self, rank: int) -> int:
        """Data-parallel replica index of `rank` inside its stage."""
        return rank % self.replicas

    def rank_of(self, stage: int, replica: int) -> int:
        """Rank of `replica` of `stage`."""
        return stage * self.replicas + replica

    def stage_ranks(self, stage: int) -> list[int]:
        """Ranks of all replicas of `stage`."""
        return [self.rank_of(stage, replica) for replica in range(self.replicas)]


def partition_blocks(costs: Sequence[float], stages: int) -> tuple[tuple[int, int], ...]:
    """Split blocks into `stages` contiguous groups so that the largest group cost is smallest.

    Args:
        costs: cost of each block, bottom first (the parameter count is a good proxy for its
            compute time).
        stages: number of groups, from 1 to `len(costs)`.

    Returns:
        `(first, end)` block indices of each group, end exclusive.

    Raises:
        UsageError: more stages than blocks, or fewer than one stage.
    """
    n = len(costs)
    if not 1 <= stages <= n:
        raise UsageError(
            f"cannot split {n} layers into {stages} pipeline stages; every stage needs at least "
            f"one layer, so use 1 to {n} stages (processes) or a deeper model.hidden"
        )
    prefix = [0.0]
    for cost in costs:
        prefix.append(prefix[-1] + float(cost))

    # best[k][i]: smallest possible largest cost when the first i blocks form k groups.
    inf = float("inf")
    best = [[inf] * (n + 1) for _ in range(stages + 1)]
    cut = [[0] * (n + 1) for _ in range(stages + 1)]
    best[0][0] = 0.0
    for k in range(1, stages + 1):
        for i in range(k, n + 1):
            for j in range(k - 1, i):
                value = max(best[k - 1][j], prefix[i] - prefix[j])
                if value < best[k][i]:
                    best[k][i], cut[k][i] = value, j

    bounds = []
    end = n
    for k in range(stages, 0, -1):
        start = cut[k][end]
        bounds.append((start, end))
        end = start
    return tuple(reversed(bounds))


def make_layout(
    mode: str, world_size: int, block_costs: Sequence[float], stages: int | None = None
) -> ParallelLayout:
    """Build the layout of a job from the `--parallel` mode and the number of processes.

    `pipeline` makes one stage per process, `data` one stage with every process a replica,
    and `both` splits the processes into `stages` stages of `world_size / stages` replicas.

    Raises:
        UsageError: an unknown mode, a missing or inconsistent `stages`, or more stages
            than layers.
    """
    if mode not in PARALLEL_MODES:
        raise UsageError(f"unknown --parallel {mode!r}; choose one of {', '.join(PARALLEL_MODES)}")
    if mode == "pipeline":
        if stages is not None and stages != world_size:
            raise UsageError(
                f"--parallel pipeline makes one stage per process ({world_size}), but --stages is "
                f"{stages}; drop --stages or use --parallel both"
            )
        stages = world_size
    elif mode == "data":
        if stages not in (None, 1):
            raise UsageError(f"--parallel data has a single stage, but --stages is {stages}; drop --stages")
        stages = 1
    else:
        if stages is None:
            raise UsageError("--parallel both needs --stages S, the number of pipeline stages")
        if stages < 1 or world_size % stages != 0:
            raise UsageError(
                f"--stages {stages} does not divide the {world_size} processes into equal stages; "
                f"choose a divisor of {world_size}"
            )
    return ParallelLayout(stages, world_size // stages, partition_blocks(block_costs, stages))
