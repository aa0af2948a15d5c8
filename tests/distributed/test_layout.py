"""Stage and replica layouts, and the split of layers between stages."""

import pytest

from forwardforward.distributed import ParallelLayout, make_layout, partition_blocks
from forwardforward.errors import UsageError


def test_partition_minimises_largest_stage():
    # Costs of 784-2000-2000-2000-2000 blocks: two stages of two blocks each are best.
    costs = [784 * 2000, 2000 * 2000, 2000 * 2000, 2000 * 2000]

    assert partition_blocks(costs, 2) == ((0, 2), (2, 4))
    assert partition_blocks(costs, 4) == ((0, 1), (1, 2), (2, 3), (3, 4))
    assert partition_blocks(costs, 1) == ((0, 4),)


def test_partition_uneven_costs():
    assert partition_blocks([10, 1, 1, 1, 1], 2) == ((0, 1), (1, 5))
    assert partition_blocks([1, 1, 1, 1, 10], 3) == ((0, 2), (2, 4), (4, 5))


def test_partition_too_many_stages():
    with pytest.raises(UsageError, match="cannot split 3 layers into 4 pipeline stages"):
        partition_blocks([1, 1, 1], 4)


def test_layout_ranks():
    layout = ParallelLayout(stages=2, replicas=3, bounds=((0, 1), (1, 3)))

    assert layout.world_size == 6
    assert [layout.stage_of(r) for r in range(6)] == [0, 0, 0, 1, 1, 1]
    assert [layout.replica_of(r) for r in range(6)] == [0, 1, 2, 0, 1, 2]
    assert layout.rank_of(1, 2) == 5
    assert layout.stage_ranks(1) == [3, 4, 5]


@pytest.mark.parametrize(
    ("mode", "world_size", "stages", "expected"),
    [("pipeline", 3, None, (3, 1)), ("data", 4, None, (1, 4)), ("both", 4, 2, (2, 2)), ("both", 6, 3, (3, 2))],
)
def test_make_layout(mode, world_size, stages, expected):
    layout = make_layout(mode, world_size, [1.0] * 4, stages)

    assert (layout.stages, layout.replicas) == expected
    assert len(layout.bounds) == expected[0]


@pytest.mark.parametrize(
    ("mode", "world_size", "stages", "message"),
    [
        ("both", 4, None, "--parallel both needs --stages"),
        ("both", 4, 3, "--stages 3 does not divide the 4 processes"),
        ("pipeline", 2, 3, "drop --stages or use --parallel both"),
        ("data", 2, 2, "--parallel data has a single stage"),
        ("pipeline", 5, None, "cannot split 4 layers into 5 pipeline stages"),
        ("ring", 2, None, "unknown --parallel 'ring'"),
    ],
)
def test_make_layout_invalid(mode, world_size, stages, message):
    with pytest.raises(UsageError, match=message):
        make_layout(mode, world_size, [1.0] * 4, stages)
