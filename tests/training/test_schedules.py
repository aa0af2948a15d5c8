"""Tests of the learning-rate schedules and of the greedy, layer-by-layer training schedule."""

import json

import pytest
import torch

from forwardforward.config import load_config
from forwardforward.errors import UsageError
from forwardforward.training import Trainer, hinton_gain, lr_gain, train
from forwardforward.training.run import load_training_data


@pytest.mark.parametrize(
    ("epoch", "total", "expected"),
    [
        (1, 100, 1.0),
        (50, 100, 1.0),
        (51, 100, 0.99),
        (75, 100, 0.51),
        (100, 100, 0.01),
        (1, 1, 1.0),
        (2, 3, 1.0),
        (3, 3, 1 / 3),
    ],
)
def test_hinton_gain_values(epoch, total, expected):
    assert hinton_gain(epoch, total) == pytest.approx(expected, rel=1e-12)


def test_hinton_gain_falls_linearly():
    gains = [hinton_gain(epoch, 100) for epoch in range(50, 101)]

    steps = [before - after for before, after in zip(gains, gains[1:])]
    assert steps[0] == pytest.approx(0.01)
    assert all(step == pytest.approx(0.02) for step in steps[1:])


def test_lr_gain_constant():
    assert [lr_gain("constant", epoch, 4) for epoch in range(1, 5)] == [1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("epoch", [0, 5, -1])
def test_lr_gain_epoch_outside(epoch):
    with pytest.raises(UsageError, match="outside 1..4"):
        lr_gain("hinton", epoch, 4)


def test_lr_gain_unknown_schedule():
    with pytest.raises(UsageError, match="unknown lr_schedule 'cosine'"):
        lr_gain("cosine", 1, 4)


def make_trainer(data_dir, overrides):
    config = load_config("mnist-quick", overrides)
    device = torch.device("cpu")
    return Trainer(config, load_training_data(config, str(data_dir), device), device)


def block_state(trainer, index):
    """Copy of every parameter and buffer of one block, keyed by name."""
    prefix = f"blocks.{index}."
    return {k: v.clone() for k, v in trainer.network.state_dict().items() if k.startswith(prefix)}


def same_state(first, second):
    return all(torch.equal(first[name], second[name]) for name in first)


def test_optimizer_lr_follows_gain(synthetic_data_dir, tiny_overrides):
    trainer = make_trainer(synthetic_data_dir, tiny_overrides)

    for _ in range(3):
        trainer.train_epoch(progress=False)

    base_lr = trainer.config.optimizer.lr
    for block in trainer.network.blocks:
        assert block.optimizer.param_groups[0]["lr"] == pytest.approx(base_lr / 3)
    assert trainer.readout.optimizer.param_groups[0]["lr"] == pytest.approx(trainer.config.readout.optimizer.lr / 3)


GREEDY_OVERRIDES = ("train.schedule='greedy'", "train.epochs=2")


def test_greedy_metrics_active_layer(tmp_path, synthetic_data_dir, tiny_overrides):
    config = load_config("mnist-quick", [*tiny_overrides, *GREEDY_OVERRIDES])

    train(config, out_dir=tmp_path / "run", data_dir=str(synthetic_data_dir), progress=False)

    lines = (tmp_path / "run" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert [r["active_layer"] for r in records] == [1, 1, 2, 2]
    assert [r["lr_gain"] for r in records] == [1.0, 0.5, 1.0, 0.5]
    assert "test/error_goodness" in records[-1]


def test_greedy_first_phase_freezes_layer2(synthetic_data_dir, tiny_overrides):
    trainer = make_trainer(synthetic_data_dir, [*tiny_overrides, *GREEDY_OVERRIDES])
    initial = [block_state(trainer, 0), block_state(trainer, 1)]

    trainer.train_epoch(progress=False)
    after_epoch1 = [block_state(trainer, 0), block_state(trainer, 1)]
    trainer.train_epoch(progress=False)
    after_epoch2 = [block_state(trainer, 0), block_state(trainer, 1)]

    assert not same_state(after_epoch1[0], initial[0])
    assert same_state(after_epoch1[1], initial[1])
    assert same_state(after_epoch2[1], initial[1])


def test_greedy_second_phase_freezes_layer1(synthetic_data_dir, tiny_overrides):
    trainer = make_trainer(synthetic_data_dir, [*tiny_overrides, *GREEDY_OVERRIDES])
    trainer.train_epoch(progress=False)
    trainer.train_epoch(progress=False)
    after_phase1 = [block_state(trainer, 0), block_state(trainer, 1)]

    record = trainer.train_epoch(progress=False)
    after_epoch3 = [block_state(trainer, 0), block_state(trainer, 1)]

    assert record["active_layer"] == 2
    assert same_state(after_epoch3[0], after_phase1[0])
    assert not same_state(after_epoch3[1], after_phase1[1])


def test_greedy_total_epochs(synthetic_data_dir, tiny_overrides):
    trainer = make_trainer(synthetic_data_dir, [*tiny_overrides, *GREEDY_OVERRIDES])

    assert trainer.total_epochs == 4
    assert [trainer.active_layer(epoch) for epoch in (1, 2, 3, 4)] == [0, 0, 1, 1]


def test_simultaneous_no_active_layer(synthetic_data_dir, tiny_overrides):
    trainer = make_trainer(synthetic_data_dir, tiny_overrides)

    record = trainer.train_epoch(progress=False)

    assert trainer.active_layer(1) is None
    assert "active_layer" not in record
