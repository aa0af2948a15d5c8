"""A model of the layer pipeline's efficiency: idle time (bubble) and bytes sent per batch.

The model replays the message schedule of `PipelineStage` for one epoch. Each stage's compute
time is proportional to multiply-adds. For a block of `p` parameters and a batch of `B`
samples, the neutral pass costs `B p` and the all-label goodness pass `C B p`. The training
step costs `4 B p`: the forward pass over `2 B` positive and negative rows, and the weight
gradient over the same rows (the input is detached, so no input gradient is computed). The
read-out step on the last stage costs `3 B F C` for `F` features. A message of `m` bytes arrives
`latency_s + m / bandwidth` after it was sent, and sends never block the sender.

It ignores the in-flight limit on sends, elementwise work (normalisation, goodness) and the
end-of-epoch collectives, so it is an estimate, to be compared with measured waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

FLOAT_BYTES = 4
LABEL_BYTES = 8  # int64


@dataclass(frozen=True)
class PipelineEstimate:
    """Modelled cost of one epoch.

    Attributes:
        stages: number of pipeline stages.
        bubble_fraction: idle share of all stages' time, `1 - busy / (stages * makespan)`.
        speedup: time of one process doing all the work, divided by the pipeline's makespan.
        bytes_per_batch: bytes of all messages of one training batch.
        max_bytes_into_rank: bytes one training batch sends to the busiest receiving rank.
        makespan_s: modelled epoch time.
    """

    stages: int
    bubble_fraction: float
    speedup: float
    bytes_per_batch: int
    max_bytes_into_rank: int
    makespan_s: float


def estimate_pipeline(
    block_params: Sequence[int],
    widths: Sequence[int],
    bounds: Sequence[tuple[int, int]],
    batch_size: int,
    num_batches: int,
    num_classes: int = 10,
    readout: bool = True,
    skip_first: int = 1,
    negatives: str = "hard",
    hard_source: str = "readout",
    seconds_per_mac: float = 1e-10,
    bandwidth_bytes_s: float = float("inf"),
    latency_s: float = 0.0,
) -> PipelineEstimate:
    """Replay one epoch of the pipeline schedule and return its bubble, speedup and bytes.

    Args:
        block_params: parameter count of each block, bottom first.
        widths: units of each block, bottom first.
        bounds: `(first, end)` block indices of each stage, as in `ParallelLayout`.
        batch_size: samples per minibatch (per replica).
        num_batches: minibatches per epoch.
        num_classes: labels tried by the goodness pass.
        readout: a linear read-out is trained on the last stage.
        skip_first: bottom blocks that the read-out leaves out.
        negatives: `random` or `hard`; `hard_source`: `readout` or `goodness`.
        seconds_per_mac: compute time of one multiply-add on one stage.
        bandwidth_bytes_s: bytes per second of every link; latency_s: per message.

    Returns:
        The estimate for one epoch.

    Raises:
        ValueError: hard negatives from the read-out without a read-out, or empty stages.
    """
    stages = len(bounds)
    if any(end <= first for first, end in bounds):
        raise ValueError(f"every stage needs at least one block, got bounds {list(bounds)}")
    if negatives == "hard" and hard_source == "readout" and not readout:
        raise ValueError("hard negatives from the read-out need readout=True")
    B, C = batch_size, num_classes
    params = [sum(block_params[first:end]) for first, end in bounds]
    out_width = [widths[end - 1] for _, end in bounds]
    features = [sum(widths[i] for i in range(max(first, skip_first), end)) for first, end in bounds]
    goodness_pass = negatives == "hard" and hard_source == "goodness"

    def arrive(sent: float, nbytes: float) -> float:
        return sent + latency_s + nbytes / bandwidth_bytes_s

    free = [0.0] * stages
    busy = [0.0] * stages

    def work(stage: int, ready: float, macs: float) -> float:
        start = max(free[stage], ready)
        free[stage] = start + macs * seconds_per_mac
        busy[stage] += macs * seconds_per_mac
        return free[stage]

    for _ in range(num_batches):
        labels_ready = 0.0
        if readout:
            ready, to_last = 0.0, []
            for s in range(stages):
                done = work(s, ready, B * params[s])
                ready = arrive(done, B * out_width[s] * FLOAT_BYTES)
                if s < stages - 1 and features[s]:
                    to_last.append(arrive(done, B * features[s] * FLOAT_BYTES))
            done = work(stages - 1, max(to_last, default=0.0), 3 * B * sum(features) * C)
            labels_ready = arrive(done, B * LABEL_BYTES) if stages > 1 else done
        if goodness_pass:
            ready, to_last = 0.0, []
            for s in range(stages):
                done = work(s, ready, C * B * params[s])
                ready = arrive(done, C * B * out_width[s] * FLOAT_BYTES)
                to_last.append(arrive(done, (bounds[s][1] - bounds[s][0]) * C * B * FLOAT_BYTES))
            done = max(free[stages - 1], *to_last[:-1]) if stages > 1 else free[0]
            labels_ready = arrive(done, B * LABEL_BYTES) if stages > 1 else done
        ready = labels_ready if negatives == "hard" else 0.0
        for s in range(stages):
            done = work(s, ready, 4 * B * params[s])
            ready = arrive(done, 2 * B * out_width[s] * FLOAT_BYTES)

    makespan = max(free)
    total_busy = sum(busy)
    bytes_in = _bytes_into_ranks(stages, B, C, out_width, features, bounds, readout, negatives, goodness_pass)
    return PipelineEstimate(
        stages=stages,
        bubble_fraction=1.0 - total_busy / (stages * makespan),
        speedup=total_busy / makespan,
        bytes_per_batch=int(sum(bytes_in)),
        max_bytes_into_rank=int(max(bytes_in)),
        makespan_s=makespan,
    )


def _bytes_into_ranks(stages, B, C, out_width, features, bounds, readout, negatives, goodness_pass) -> list[float]:
    """Bytes that one training batch sends to each stage."""
    into = [0.0] * stages
    for s in range(stages - 1):
        into[s + 1] += 2 * B * out_width[s] * FLOAT_BYTES  # positive and negative activities
        if readout:
            into[s + 1] += B * out_width[s] * FLOAT_BYTES  # neutral activities
            into[stages - 1] += B * features[s] * FLOAT_BYTES  # read-out features
        if goodness_pass:
            into[s + 1] += C * B * out_width[s] * FLOAT_BYTES
            into[stages - 1] += (bounds[s][1] - bounds[s][0]) * C * B * FLOAT_BYTES
    if negatives == "hard" and stages > 1:
        into[0] += B * LABEL_BYTES
    return into


def allreduce_bytes_per_replica(num_params: int, replicas: int) -> float:
    """Bytes each replica sends per batch in a ring all-reduce of `num_params` float32 gradients."""
    if replicas <= 1:
        return 0.0
    return 2.0 * (replicas - 1) / replicas * num_params * FLOAT_BYTES
