"""Distance-Forward: centroid goodness, the N-pair margin loss, DF-O and DF-R signals, runs."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from forwardforward.config import load_config
from forwardforward.errors import UsageError
from forwardforward.training import load_checkpoint, save_checkpoint, train
from forwardforward.training.trainer import TrainingData
from forwardforward.variants.df_goodness import (
    ClassCentroids,
    centroid_goodness,
    n_pair_margin_loss,
    negative_mask,
)
from forwardforward.variants.distance_forward import DFTrainer, make_trainer

from cifar_helpers import write_synthetic_cifar

FC_OVERRIDES = ["model.kind='fc'", "model.hidden=[6,5,4]", "model.pool_after=[]", "train.batch_size=10",
                "train.epochs=2", "data.jitter=0", "train.skip_first=0"]
CONV_OVERRIDES = ["model.hidden=[8,8,8]", "model.pool_after=[1,2]", "train.epochs=4", "train.batch_size=20",
                  "train.eval_batch_size=50", "train.skip_first=1", "optimizer.lr=0.01"]


def fc_data(count=40, features=8):
    generator = torch.Generator().manual_seed(3)
    images = torch.rand(count, features, generator=generator)
    labels = torch.arange(count) % 10
    return TrainingData(images, labels, {"test": (images[:20], labels[:20])}, 10, None)


def fc_trainer(*overrides):
    config = load_config("df-mnist", FC_OVERRIDES + list(overrides))
    return make_trainer(config, fc_data(), torch.device("cpu"))


def layer_gradients(trainer, kept_layer):
    """Gradient norm of every block when only layer `kept_layer` (0-based) has a loss."""
    weights = [1.0 if index == kept_layer else 0.0 for index in range(len(trainer.network.blocks))]
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.accumulate_gradients(trainer.data.train_images[:10], trainer.data.train_labels[:10], weights)
    norms = []
    for block in trainer.network.blocks:
        grads = [p.grad for p in block.parameters() if p.grad is not None]
        norms.append(sum(float(g.abs().sum()) for g in grads))
    return norms


def test_squared_euclidean_goodness_hand_computed():
    z = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    c = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 0.0]])
    expected = -torch.tensor([[4.0, 4.0, 5.0], [1.0, 13.0, 0.0]]) / 2
    assert torch.allclose(centroid_goodness(z, c, "squared_euclidean"), expected)


def test_cosine_goodness_hand_computed():
    z = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    c = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    expected = torch.tensor([[0.0, -1.0, -2.0], [1 / math.sqrt(2) - 1, 1 / math.sqrt(2) - 1, -1 / math.sqrt(2) - 1]])
    assert torch.allclose(centroid_goodness(z, c, "cosine"), expected, atol=1e-6)


def test_goodness_rejects_bad_input():
    with pytest.raises(UsageError, match="manhattan"):
        centroid_goodness(torch.zeros(2, 3), torch.zeros(4, 3), "manhattan")
    with pytest.raises(UsageError, match="same D"):
        centroid_goodness(torch.zeros(2, 3), torch.zeros(4, 5), "cosine")


def test_softplus_loss_one_negative_is_softplus():
    goodness = torch.tensor([[-0.2, -0.5, -0.9], [-1.0, -0.1, -0.3]])
    labels = torch.tensor([0, 2])
    mask = torch.tensor([[False, True, False], [True, False, False]])
    loss = n_pair_margin_loss(goodness, labels, mask, margin=0.3, form="softplus", scale=2.0)
    expected = (F.softplus(2.0 * torch.tensor([0.3 - 0.5 + 0.2, 0.3 - 1.0 + 0.3])) / 2.0).mean()
    assert torch.allclose(loss, expected)


def test_softplus_loss_all_negatives_hand_computed():
    goodness = torch.tensor([[0.0, -1.0, -2.0]])
    mask = torch.tensor([[False, True, True]])
    loss = n_pair_margin_loss(goodness, torch.tensor([0]), mask, margin=0.5, scale=1.0)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-0.5) + math.exp(-1.5)))


def test_hinge_loss_zero_when_margin_met():
    goodness = torch.tensor([[0.0, -1.0, -2.0]])
    mask = torch.tensor([[False, True, True]])
    assert n_pair_margin_loss(goodness, torch.tensor([0]), mask, margin=0.9, form="hinge").item() == 0.0
    assert n_pair_margin_loss(goodness, torch.tensor([0]), mask, margin=1.5, form="hinge").item() == pytest.approx(0.25)


def test_softplus_tends_to_hinge_on_hardest():
    goodness = torch.tensor([[-0.4, -0.1, -0.8, -0.6]])
    mask = torch.tensor([[False, True, True, True]])
    loss = n_pair_margin_loss(goodness, torch.tensor([0]), mask, margin=0.2, scale=1e4)
    assert loss.item() == pytest.approx(0.5, abs=1e-3)  # max(0, 0.2 - 0.1 + 0.4)


def test_loss_rejects_bad_settings():
    goodness, labels = torch.zeros(1, 3), torch.tensor([0])
    with pytest.raises(UsageError, match="squared"):
        n_pair_margin_loss(goodness, labels, torch.tensor([[False, True, True]]), 0.1, form="squared")
    with pytest.raises(UsageError, match="at least one negative"):
        n_pair_margin_loss(goodness, labels, torch.zeros(1, 3, dtype=torch.bool), 0.1)
    with pytest.raises(UsageError, match="scale"):
        n_pair_margin_loss(goodness, labels, torch.tensor([[False, True, True]]), 0.1, scale=0.0)


def test_negative_masks_exclude_true_class():
    goodness = torch.tensor([[0.0, -0.3, -0.1, -0.9], [-0.5, -0.2, 0.0, -0.4]])
    labels = torch.tensor([0, 2])
    assert negative_mask(goodness, labels, "all", 1).tolist() == [[False, True, True, True], [True, True, False, True]]
    assert negative_mask(goodness, labels, "hardest", 2).tolist() == [[False, True, True, False],
                                                                     [False, True, False, True]]
    random = negative_mask(goodness, labels, "random", 2, torch.Generator().manual_seed(0))
    assert random.sum(dim=1).tolist() == [2, 2]
    assert not random[torch.arange(2), labels].any()
    with pytest.raises(UsageError, match="num_negatives"):
        negative_mask(goodness, labels, "hardest", 4)


def test_running_mean_centroids_hand_computed():
    centroids = ClassCentroids(3, 2, "squared_euclidean", "running_mean", momentum=0.5)
    centroids.update(torch.tensor([[1.0, 1.0], [3.0, 1.0], [4.0, 4.0]]), torch.tensor([0, 0, 2]))
    assert centroids.centroids.tolist() == [[2.0, 1.0], [0.0, 0.0], [4.0, 4.0]]
    centroids.update(torch.tensor([[0.0, 3.0]]), torch.tensor([0]))
    assert centroids.centroids.tolist() == [[1.0, 2.0], [0.0, 0.0], [4.0, 4.0]]
    assert centroids.seen.tolist() == [True, False, True]
    assert "centroids" in dict(centroids.named_buffers())


def test_greedy_layers_get_only_own_loss():
    trainer = fc_trainer("model.collaboration='greedy'")
    assert [n > 0 for n in layer_gradients(trainer, kept_layer=2)] == [False, False, True]


def test_overlap_gradient_stops_at_block_input():
    trainer = fc_trainer("model.collaboration='overlap'")
    assert [n > 0 for n in layer_gradients(trainer, kept_layer=2)] == [False, True, True]
    assert [n > 0 for n in layer_gradients(trainer, kept_layer=1)] == [True, True, False]


def test_feedback_reaches_layer_below_only():
    trainer = fc_trainer("model.collaboration='feedback'")
    assert [n > 0 for n in layer_gradients(trainer, kept_layer=2)] == [False, True, True]


def test_feedback_weights_stay_fixed():
    trainer = fc_trainer("model.collaboration='feedback'")
    before = [trainer.network.feedback(i).clone() for i in range(2)]
    trainer.train_epoch(progress=False)
    assert all(torch.equal(trainer.network.feedback(i), before[i]) for i in range(2))
    names = {name for name, _ in trainer.network.named_parameters()}
    assert not any(name.startswith("feedback") for name in names)


def test_running_centroids_survive_checkpoint(tmp_path):
    trainer = fc_trainer("model.centroids='running_mean'", "model.distance='squared_euclidean'")
    trainer.train_epoch(progress=False)
    save_checkpoint(tmp_path / "checkpoint.pt", trainer.state_dict())
    torch.manual_seed(99)  # a resumed process starts from other random state
    resumed = fc_trainer("model.centroids='running_mean'", "model.distance='squared_euclidean'")
    resumed.load_state_dict(load_checkpoint(tmp_path / "checkpoint.pt"))
    for before, after in zip(trainer.network.centroids, resumed.network.centroids):
        assert torch.equal(before.centroids, after.centroids)
        assert torch.equal(before.seen, after.seen)
    expected = trainer.train_epoch(progress=False)
    record = resumed.train_epoch(progress=False)
    assert record["train/loss"] == expected["train/loss"]


@pytest.mark.parametrize("overrides, message", [
    (["model.distance='l1'"], "model.distance = 'l1' is not valid"),
    (["model.collaboration='both'"], "model.collaboration"),
    (["model.pool_after=[9]"], "outside 1..4"),
    (["model.centroid_momentum=1.0"], "centroid_momentum"),
    (["train.skip_first=4"], "leaves none"),
    (["method='sgd'"], "method = 'sgd' is not valid"),
    (["model.unknown=1"], "unknown recipe key"),
])
def test_config_rejects_bad_settings(overrides, message):
    with pytest.raises(UsageError, match=message):
        load_config("df-mnist", overrides)


@pytest.mark.parametrize("recipe", ["df-mnist", "df-fashion-mnist", "df-cifar10"])
def test_recipes_load(recipe):
    config = load_config(recipe)
    assert config.variant == "df"
    assert load_config(recipe, ["method='backprop'"]).method == "backprop"


@pytest.mark.parametrize("method", ["df", "backprop"])
def test_cifar_run_learns(tmp_path, method):
    data_dir = write_synthetic_cifar(tmp_path / "data")
    config = load_config("df-cifar10", CONV_OVERRIDES + [f"method='{method}'"])
    result = train(config, out_dir=tmp_path / "run", data_dir=str(data_dir), progress=False)
    key = "test/error_centroid" if method == "df" else "test/error_softmax"
    assert result.final["epoch"] == 4
    assert result.final[key] < 30.0  # chance is 90 %
    assert json.loads((tmp_path / "run" / "config.json").read_text())["variant"] == "df"


def test_cli_train_and_evaluate(tmp_path, synthetic_data_dir, run_cli):
    run_dir = tmp_path / "run"
    options = [part for item in ["data.train_limit=200", "model.hidden=[4,8,8]", "model.pool_after=[1,2]",
                                 "train.epochs=1"] for part in ("--set", item)]
    result = run_cli("train", "--recipe", "df-mnist", *options, "--data-dir", synthetic_data_dir,
                     "--out", run_dir, "--quiet")
    assert result.code == 0, result.err
    evaluated = run_cli("evaluate", run_dir, "--json")
    assert evaluated.code == 0, evaluated.err
    final = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    assert json.loads(evaluated.out)["test_error_centroid"] == final["test/error_centroid"]


def test_trainer_rejects_conv_without_image_shape():
    config = load_config("df-mnist")
    with pytest.raises(UsageError, match="image shape"):
        DFTrainer(config, fc_data(features=784), torch.device("cpu"))


def reference_gradients(trainer, images, labels):
    """Block gradients of DF-O or DF-R computed the slow way, from separate forward passes."""
    model = trainer.config.model
    network = trainer.network
    blocks = list(network.blocks)

    def layer_loss(index, z):
        goodness = network.centroids[index](z)
        mask = negative_mask(goodness, labels, "all", 1)
        return n_pair_margin_loss(goodness, labels, mask, model.margin, model.loss, model.scale)

    inputs = [images]
    for block in blocks[:-1]:
        inputs.append(block(inputs[-1]).detach())
    total = 0.0
    for index, block in enumerate(blocks):
        if model.collaboration == "overlap" and index > 0:
            # Block (index - 1, index): the loss through both layers, from the lower layer's input.
            z = block.representation(block(blocks[index - 1](inputs[index - 1])))
        else:
            z = block.representation(block(inputs[index]))
        total = total + layer_loss(index, z)
        if index > 0 and model.collaboration == "feedback":
            error = torch.autograd.grad(layer_loss(index, z), z)[0]
            below = blocks[index - 1].representation(blocks[index - 1](inputs[index - 1]))
            total = total + (below * (model.feedback_strength * error @ network.feedback(index - 1).T)).sum()
    params = list(network.blocks.parameters())
    return torch.autograd.grad(total, params)


@pytest.mark.parametrize("collaboration", ["overlap", "feedback"])
def test_collaboration_matches_slow_reference(collaboration):
    trainer = fc_trainer(f"model.collaboration='{collaboration}'", "model.batch_norm=false")
    images, labels = trainer.data.train_images[:10], trainer.data.train_labels[:10]
    expected = reference_gradients(trainer, images, labels)
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.accumulate_gradients(images, labels)
    for param, grad in zip(trainer.network.blocks.parameters(), expected):
        assert torch.allclose(param.grad, grad, atol=1e-6)
