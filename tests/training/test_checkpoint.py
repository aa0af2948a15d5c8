"""Tests of save_checkpoint and load_checkpoint: atomic writes and safe, checked loading."""

import threading

import pytest
import torch

from forwardforward.errors import UsageError
from forwardforward.training import load_checkpoint, save_checkpoint


class Payload:
    """An arbitrary class, which a weights-only load must reject."""


def test_round_trip(tmp_path):
    path = tmp_path / "checkpoint.pt"
    weights = torch.arange(6, dtype=torch.float32).reshape(2, 3)

    save_checkpoint(path, {"epoch": 4, "weights": weights, "names": ["a", "b"], "extra": None})
    state = load_checkpoint(path)

    assert state["epoch"] == 4
    assert torch.equal(state["weights"], weights)
    assert state["names"] == ["a", "b"]
    assert state["extra"] is None
    assert state["format"] == "forwardforward-checkpoint-v1"


def test_loads_weights_only(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1, "weights": torch.ones(2)})

    state = torch.load(path, weights_only=True)

    assert state["epoch"] == 1


def test_load_missing(tmp_path):
    with pytest.raises(UsageError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "absent.pt")


def test_load_garbage(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"\x00garbage" * 50)

    with pytest.raises(UsageError, match="cannot read checkpoint") as caught:
        load_checkpoint(path)
    assert "\n" not in str(caught.value)


def test_load_empty_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"")

    with pytest.raises(UsageError, match="cannot read checkpoint"):
        load_checkpoint(path)


def test_load_foreign_torch_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": {"weight": torch.ones(2)}}, path)

    with pytest.raises(UsageError, match="is not a forwardforward checkpoint"):
        load_checkpoint(path)


def test_load_tensor_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save(torch.ones(3), path)

    with pytest.raises(UsageError, match="is not a forwardforward checkpoint"):
        load_checkpoint(path)


def test_load_rejects_pickled_object(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "forwardforward-checkpoint-v1", "payload": Payload()}, path)

    with pytest.raises(UsageError, match="cannot read checkpoint"):
        load_checkpoint(path)


def test_failed_save_keeps_previous(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1, "weights": torch.ones(2)})
    before = path.read_bytes()

    # A lock cannot be pickled, so torch.save raises.
    with pytest.raises(TypeError, match="pickle"):
        save_checkpoint(path, {"epoch": 2, "weights": torch.zeros(2), "lock": threading.Lock()})

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_save_replaces(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1})

    save_checkpoint(path, {"epoch": 2})

    assert load_checkpoint(path)["epoch"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
