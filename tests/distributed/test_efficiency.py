"""The pipeline efficiency model against hand-computed schedules."""

import pytest

from forwardforward.distributed.efficiency import allreduce_bytes_per_replica, estimate_pipeline

BATCH = 100


def equal_stages(stages, width=2000):
    params = [width * width] * stages
    widths = [width] * stages
    bounds = [(s, s + 1) for s in range(stages)]
    return params, widths, bounds


@pytest.mark.parametrize("stages", [1, 2, 4, 16])
def test_random_negatives_bubble_is_fill_and_drain(stages):
    # Equal stages without a read-out or communication cost: N batches take N + S - 1 slots.
    params, widths, bounds = equal_stages(stages)
    batches = 50

    estimate = estimate_pipeline(params, widths, bounds, BATCH, batches, readout=False, negatives="random")

    assert estimate.bubble_fraction == pytest.approx((stages - 1) / (batches + stages - 1))
    assert estimate.speedup == pytest.approx(stages * batches / (batches + stages - 1))


def test_hard_negatives_run_in_lock_step():
    # Per batch, the top stage's neutral pass (B p) and the read-out come after the training of
    # the batch before, then every stage trains in turn (4 B p each). The lower stages' neutral
    # passes overlap the training of the stages above them.
    stages = 4
    params, widths, bounds = equal_stages(stages)
    p = params[0]
    readout_macs = 3 * BATCH * sum(widths[1:]) * 10

    estimate = estimate_pipeline(params, widths, bounds, BATCH, 200, seconds_per_mac=1.0)

    steady_period = stages * 4 * BATCH * p + BATCH * p + readout_macs
    assert estimate.makespan_s == pytest.approx(200 * steady_period, rel=0.02)
    busy = stages * 5 * BATCH * p + readout_macs
    assert estimate.speedup == pytest.approx(busy / steady_period, rel=0.02)
    assert estimate.bubble_fraction > 0.7


def test_bytes_per_batch():
    # 2 stages of 1000 units, read-out on layers 2 and 3 (skip_first=1), hard read-out negatives.
    params, widths, bounds = [784_000, 1_000_000, 1_000_000], [1000, 1000, 1000], [(0, 1), (1, 3)]

    estimate = estimate_pipeline(params, widths, bounds, BATCH, 1)

    train = 2 * BATCH * 1000 * 4  # positive and negative activities into stage 2
    neutral = BATCH * 1000 * 4  # stage 1 owns no read-out layer, so only the chain carries it
    labels = BATCH * 8
    assert estimate.bytes_per_batch == train + neutral + labels
    assert estimate.max_bytes_into_rank == train + neutral


def test_goodness_pass_bytes():
    params, widths, bounds = equal_stages(2, width=100)

    estimate = estimate_pipeline(params, widths, bounds, BATCH, 1, hard_source="goodness", readout=False)

    chain = (2 + 10) * BATCH * 100 * 4  # training pair and all-label activities
    goodness = 1 * 10 * BATCH * 4  # stage 1's goodness per label
    assert estimate.bytes_per_batch == chain + goodness + BATCH * 8


def test_allreduce_bytes():
    assert allreduce_bytes_per_replica(1000, 1) == 0
    assert allreduce_bytes_per_replica(1000, 2) == pytest.approx(4000)
    assert allreduce_bytes_per_replica(1000, 4) == pytest.approx(6000)


def test_invalid_inputs():
    with pytest.raises(ValueError, match="at least one block"):
        estimate_pipeline([1], [1], [(0, 0)], BATCH, 1)
    with pytest.raises(ValueError, match="need readout=True"):
        estimate_pipeline([1], [1], [(0, 1)], BATCH, 1, readout=False)
