"""Tests of CheckpointParts: the trainer state that every trainer writes and reads the same way."""

import pytest
import torch
from torch import nn

from forwardforward.errors import UsageError
from forwardforward.training import load_checkpoint, save_checkpoint
from forwardforward.training.checkpoint import CheckpointParts, checkpoint_must_fit


def _parts(width: int = 3, layers: int = 2, readout: bool = False, seed: int = 0) -> tuple[CheckpointParts, dict]:
    """Parts of a small trainer: a stack of linear layers with one Adam each, two generators."""
    torch.manual_seed(seed)
    network = nn.Sequential(*[nn.Linear(width, width) for _ in range(layers)])
    optimizers = [torch.optim.Adam(layer.parameters(), lr=0.1) for layer in network]
    head = nn.Linear(width, 2) if readout else None
    generators = {"shuffle_rng": torch.Generator().manual_seed(seed + 1),
                  "jitter_rng": torch.Generator().manual_seed(seed + 2)}
    parts = CheckpointParts(
        parts={"network": network, "block_optimizers": optimizers, "readout": head},
        generators=generators,
        optional_generators=("jitter_rng",),
    )
    return parts, {"network": network, "optimizers": optimizers, "generators": generators}


def _step(objects: dict) -> None:
    """One Adam step on every layer, so that the optimizers contain moment estimates."""
    x = torch.ones(4, objects["network"][0].in_features)
    objects["network"](x).square().sum().backward()
    for optimizer in objects["optimizers"]:
        optimizer.step()
        optimizer.zero_grad()


def test_capture_keys_and_missing_parts():
    parts, objects = _parts()
    _step(objects)

    state = parts.capture(epoch=7)

    assert set(state) == {"epoch", "network", "block_optimizers", "readout", "shuffle_rng", "jitter_rng"}
    assert state["epoch"] == 7
    assert state["readout"] is None
    assert len(state["block_optimizers"]) == 2
    assert torch.equal(state["network"]["0.weight"], objects["network"][0].weight)
    assert torch.equal(state["shuffle_rng"], objects["generators"]["shuffle_rng"].get_state())


def test_restore_from_file_is_bit_exact(tmp_path):
    parts, objects = _parts(seed=0)
    _step(objects)
    save_checkpoint(tmp_path / "c.pt", parts.capture(epoch=3))
    expected_draw = torch.rand(5, generator=objects["generators"]["shuffle_rng"])
    expected_jitter = torch.randint(0, 100, (5,), generator=objects["generators"]["jitter_rng"])
    _step(objects)
    expected_weight = objects["network"][1].weight.detach().clone()

    fresh, fresh_objects = _parts(seed=11)  # other weights and generator seeds
    epoch = fresh.restore(load_checkpoint(tmp_path / "c.pt"))

    assert epoch == 3
    assert torch.equal(torch.rand(5, generator=fresh_objects["generators"]["shuffle_rng"]), expected_draw)
    assert torch.equal(torch.randint(0, 100, (5,), generator=fresh_objects["generators"]["jitter_rng"]),
                       expected_jitter)
    _step(fresh_objects)  # the same Adam step only if the moment estimates came back too
    assert torch.equal(fresh_objects["network"][1].weight, expected_weight)


def test_mismatching_network_raises_usage_error():
    parts, _ = _parts(width=3)
    other, _ = _parts(width=4)

    # PyTorch's first line names the module whose state does not fit, and the details follow it
    with pytest.raises(UsageError, match="does not match this run's configuration: .*state_dict for Sequential"):
        other.restore(parts.capture(epoch=1))


def test_missing_part_names_its_key():
    parts, _ = _parts()
    state = parts.capture(epoch=1)
    del state["block_optimizers"]

    with pytest.raises(UsageError, match="does not match this run's configuration: 'block_optimizers'"):
        parts.restore(state)


def test_optimizer_count_mismatch_raises():
    parts, _ = _parts(layers=2)
    other, _ = _parts(layers=3)
    state = parts.capture(epoch=1)
    state["network"] = other.capture(epoch=1)["network"]  # only the optimizer list differs

    with pytest.raises(UsageError, match="does not match this run's configuration"):
        other.restore(state)


def test_absent_part_is_skipped():
    with_head, _ = _parts(readout=True)
    without_head, _ = _parts(readout=False)
    state = with_head.capture(epoch=2)
    assert state["readout"] is not None

    # the stored read-out is ignored by a run without one
    assert without_head.restore(state) == 2


def test_optional_and_required_generators():
    parts, objects = _parts()
    state = parts.capture(epoch=1)
    jitter_before = objects["generators"]["jitter_rng"].get_state()

    del state["jitter_rng"]
    parts.restore(state)
    assert torch.equal(objects["generators"]["jitter_rng"].get_state(), jitter_before)

    del state["shuffle_rng"]
    with pytest.raises(KeyError, match="shuffle_rng"):
        parts.restore(state)


def test_must_fit_first_line_only():
    with pytest.raises(UsageError) as info:
        with checkpoint_must_fit():
            raise RuntimeError("size mismatch for weight\nsecond line")
    assert str(info.value) == "the checkpoint does not match this run's configuration: size mismatch for weight"

    with pytest.raises(TypeError):
        with checkpoint_must_fit():
            raise TypeError("not a checkpoint error")
