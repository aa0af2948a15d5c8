"""Tests of VFF-Net: layer groups, gradient stops, configuration, and short runs end to end."""

import json

import pytest
import torch

from forwardforward.config import load_config
from forwardforward.errors import UsageError
from forwardforward.training import load_checkpoint, save_checkpoint, train
from forwardforward.training.trainer import TrainingData
from forwardforward.variants.vffnet import (
    VFFModelConfig,
    build_backprop_baseline,
    build_network,
    layer_groups,
    make_trainer,
)

from cifar_helpers import write_synthetic_cifar

CONV_OVERRIDES = [
    "model.hidden=[4,4,8,8]",
    "train.epochs=2",
    "train.batch_size=50",
    "train.eval_batch_size=100",
    "data.dataset='cifar10-jpeg'",
    "data.split='full'",
    "train.device='cpu'",
]
FC_OVERRIDES = [
    "model.hidden=[32,32,16]",
    "train.epochs=2",
    "train.batch_size=50",
    "train.eval_batch_size=100",
    "data.limit=300",
    "train.device='cpu'",
]


@pytest.fixture(scope="module")
def cifar_data_dir(tmp_path_factory):
    """Data folder whose cifar10-jpeg/ contains 200 synthetic training and 40 test images."""
    return write_synthetic_cifar(tmp_path_factory.mktemp("cifar"))


def test_layer_groups_follow_equal_widths():
    assert layer_groups([64, 64, 128, 128]) == [(0, 2), (2, 4)]
    assert layer_groups([8, 16, 16, 16, 8]) == [(0, 1), (1, 4), (4, 5)]
    assert layer_groups([5]) == [(0, 1)]


def test_layer_groups_off_gives_one_per_layer():
    assert layer_groups([64, 64, 128, 128], grouping=False) == [(0, 1), (1, 2), (2, 3), (3, 4)]


def small_conv_network(grouping=True):
    model = VFFModelConfig(kind="conv", hidden=(4, 4, 6), pool_after=(2,), grouping=grouping)
    torch.manual_seed(0)
    return build_network(model, (3, 8, 8), 10)


def test_group_loss_stops_at_group_input():
    network = small_conv_network()
    assert network.groups == [(0, 2), (2, 3)]
    x = network.prepare(torch.rand(3, 3 * 8 * 8), torch.tensor([0, 1, 2]))
    _, h = network.run_group(0, x)
    activity, _ = network.run_group(1, h)
    network.goodness(activity).sum().backward()
    for layer in network.layers[:2]:
        assert all(p.grad is None for p in layer.parameters())
    assert all(p.grad is not None for p in network.layers[2].parameters())


def test_group_loss_reaches_every_layer_of_group():
    network = small_conv_network()
    x = network.prepare(torch.rand(3, 3 * 8 * 8), torch.tensor([0, 1, 2]))
    activity, _ = network.run_group(0, x)
    network.goodness(activity).sum().backward()
    for layer in network.layers[:2]:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters())
    assert all(p.grad is None for p in network.layers[2].parameters())


def test_ungrouped_layers_are_local():
    network = small_conv_network(grouping=False)
    x = network.prepare(torch.rand(3, 3 * 8 * 8), torch.tensor([0, 1, 2]))
    _, h = network.run_group(0, x)
    activity, _ = network.run_group(1, h)
    network.goodness(activity).sum().backward()
    assert all(p.grad is None for p in network.layers[0].parameters())
    assert all(p.grad is not None for p in network.layers[1].parameters())


def test_trainer_step_frozen_top_group():
    config = load_config("vff-cifar10", ["model.hidden=[4,4,6]", "model.pool_after=[2]"])
    images = torch.rand(20, 3 * 32 * 32)
    labels = torch.arange(20) % 10
    data = TrainingData(images, labels, {"test": (images, labels)}, 10, (3, 32, 32))
    trainer = make_trainer(config, data, torch.device("cpu"))
    # With the top group's learning rate at zero, only the bottom group's loss moves weights.
    trainer.optimizers[1].param_groups[0]["lr"] = 0.0
    trainer.optimizers[1].param_groups[1]["lr"] = 0.0
    top = [p.detach().clone() for p in trainer.network.layers[2].parameters()]
    bottom = [p.detach().clone() for p in trainer.network.layers[0].parameters()]
    trainer.train_batch(images, labels)
    assert all(torch.equal(a, b) for a, b in zip(top, trainer.network.layers[2].parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(bottom, trainer.network.layers[0].parameters()))


def test_goodness_per_position_hand_computed():
    network = small_conv_network()
    activity = torch.zeros(1, 2, 1, 2)
    activity[0, :, 0, 0] = torch.tensor([1.0, 2.0])  # mean of squares 2.5
    activity[0, :, 0, 1] = torch.tensor([3.0, 1.0])  # mean of squares 5.0
    network.goodness_fn = __import__("forwardforward.goodness", fromlist=["x"]).mean_of_squares
    assert network.goodness(activity).item() == pytest.approx(3.75)


def test_goodness_per_label_shape():
    network = small_conv_network()
    goodness = network.goodness_per_label(torch.rand(5, 3 * 8 * 8))
    assert goodness.shape == (5, 2, 10)


def test_noise_patterns_in_checkpoint_state():
    network = small_conv_network()
    assert "labels.patterns" in network.state_dict()


def test_backprop_baseline_has_no_label_input():
    model = VFFModelConfig(kind="conv", hidden=(4, 4, 6), pool_after=(2,))
    baseline = build_backprop_baseline(model, (3, 8, 8), 10)
    assert baseline(torch.rand(2, 3 * 8 * 8)).shape == (2, 10)
    assert baseline.body[1][0].in_channels == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.labels='channels'"], "need model.kind = 'conv'"),
        (["model.kind='mlp'"], "model.kind = 'mlp' is not valid"),
        (["model.pool_after=[4]"], "outside 1..3"),
        (["model.cosine_margin=2.0"], "cosine_margin must lie"),
        (["model.noise_amplitude=0.0"], "noise_amplitude must be positive"),
        (["train.skip_first=1"], "leaves none of the 1 layer groups"),
        (["train.schedule='greedy'"], "schedule = 'simultaneous'"),
        (["method='sgd'"], "method = 'sgd' is not valid"),
        (["model.nope=1"], "unknown recipe key 'model.nope'"),
        (["variant='nope'"], "variant = 'nope' is not valid"),
    ],
)
def test_config_rejects_bad_settings(overrides, message):
    with pytest.raises(UsageError, match=message):
        load_config("vff-mnist-fc", overrides)


@pytest.mark.parametrize("recipe", ["ff-cnn-cifar10", "vff-cifar10", "vff-cifar10-backprop"])
def test_cifar_recipes_run(recipe, tmp_path, cifar_data_dir):
    config = load_config(recipe, CONV_OVERRIDES)
    result = train(config, out_dir=tmp_path / "run", data_dir=str(cifar_data_dir), progress=False)
    assert result.final["epoch"] == 2
    assert 0.0 <= result.final["test/error_softmax"] <= 100.0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["kind"] == "conv"


def test_plain_ff_cnn_reference_switches_ideas_off():
    config = load_config("ff-cnn-cifar10")
    reference = load_config("vff-cifar10")
    assert (config.model.labels, config.model.cosine_weight, config.model.grouping) == ("pixels", 0.0, False)
    assert config.model.hidden == reference.model.hidden
    assert config.model.pool_after == reference.model.pool_after


def test_plain_ff_cnn_learns_synthetic_cifar(tmp_path, cifar_data_dir):
    config = load_config("ff-cnn-cifar10", CONV_OVERRIDES + ["train.epochs=4", "model.hidden=[8,8,8,8]"])
    result = train(config, out_dir=tmp_path / "run", data_dir=str(cifar_data_dir), progress=False)
    assert result.final["test/error_softmax"] < 60.0  # chance is 90 %


def synthetic_training_data(image_shape=(3, 8, 8), count=60):
    generator = torch.Generator().manual_seed(3)
    images = torch.rand(count, torch.Size(image_shape).numel(), generator=generator)
    labels = torch.arange(count) % 10
    return TrainingData(images, labels, {"test": (images[:20], labels[:20])}, 10, image_shape)


@pytest.mark.parametrize("method", ["ff", "backprop"])
def test_resume_matches_uninterrupted(tmp_path, method):
    config = load_config("vff-cifar10", ["model.hidden=[4,4,6]", "model.pool_after=[2]", f"method='{method}'",
                                         "train.epochs=2", "train.batch_size=20"])
    data = synthetic_training_data()
    device = torch.device("cpu")
    uninterrupted = make_trainer(config, data, device)
    uninterrupted.train_epoch(progress=False)
    expected = uninterrupted.train_epoch(progress=False)

    first = make_trainer(config, data, device)
    first.train_epoch(progress=False)
    save_checkpoint(tmp_path / "checkpoint.pt", first.state_dict())
    torch.manual_seed(123)  # a resumed process starts from other random state
    resumed = make_trainer(config, data, device)
    resumed.load_state_dict(load_checkpoint(tmp_path / "checkpoint.pt"))
    record = resumed.train_epoch(progress=False)

    for key, value in expected.items():
        if not key.endswith(("_time_s", "samples_per_s")):
            assert record[key] == value, key
    assert resumed.evaluate() == uninterrupted.evaluate()


def test_checkpoint_restores_noise_patterns(tmp_path):
    config = load_config("vff-cifar10", ["model.hidden=[4,4,6]", "model.pool_after=[2]"])
    data = synthetic_training_data()
    trainer = make_trainer(config, data, torch.device("cpu"))
    save_checkpoint(tmp_path / "checkpoint.pt", trainer.state_dict())
    other = make_trainer(load_config("vff-cifar10", ["model.hidden=[4,4,6]", "model.pool_after=[2]",
                                                     "model.noise_seed=5"]), data, torch.device("cpu"))
    assert not torch.equal(other.network.labels.patterns, trainer.network.labels.patterns)
    other.load_state_dict(load_checkpoint(tmp_path / "checkpoint.pt"))
    assert torch.equal(other.network.labels.patterns, trainer.network.labels.patterns)


def test_vff_cli_train_and_evaluate(tmp_path, synthetic_data_dir, run_cli):
    run_dir = tmp_path / "run"
    options = [part for assignment in FC_OVERRIDES for part in ("--set", assignment)]
    result = run_cli("train", "--recipe", "vff-mnist-fc", *options, "--data-dir", synthetic_data_dir,
                     "--out", run_dir, "--quiet")
    assert result.code == 0, result.err
    assert "test error: goodness" in result.out
    evaluated = run_cli("evaluate", run_dir, "--json")
    assert evaluated.code == 0, evaluated.err
    record = json.loads(evaluated.out)
    final = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    assert record["test_error_goodness"] == final["test/error_goodness"]
