"""Every recipe of Hinton (2022) and its backprop baseline, run end to end on small generated data."""

import copy
import json

import pytest
import torch
from cli_helpers import set_options

from forwardforward.config import load_config
from forwardforward.training.run import load_training_data, make_trainer

COMMON = ("train.epochs=2", "train.batch_size=50", "train.eval_batch_size=100", "data.limit=300",
          "train.device='cpu'", "train.eval_every=1")
SMALL = {
    "hinton-mnist-unsupervised": ("model.hidden=[32,32,32,32]",),
    "hinton-mnist-local": (),
    "hinton-mnist-recurrent": ("model.hidden=[32,32]", "recurrent.iterations=4", "recurrent.eval_last=4"),
    "hinton-mnist-jitter": ("model.hidden=[32,32]",),
}


def read_records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("recipe", sorted(SMALL))
@pytest.mark.parametrize("trainer", ["ff", "backprop"])
def test_mnist_recipe_runs_from_cli(recipe, trainer, run_cli, synthetic_data_dir, tmp_path):
    overrides = [*COMMON, *SMALL[recipe], f"trainer={trainer}"]

    result = run_cli("train", "--recipe", recipe, *set_options(overrides), "--data-dir", synthetic_data_dir,
                     "--out", tmp_path / "run", "--quiet")

    assert result.code == 0, result.err
    records = read_records(tmp_path / "run")
    assert [r["epoch"] for r in records] == [1, 2]
    final = records[-1]
    assert 0.0 <= final["test/error_softmax"] <= 100.0
    assert "train/error_softmax" in final
    labelled_ff = trainer == "ff" and recipe != "hinton-mnist-unsupervised"
    assert ("test/error_goodness" in final) == labelled_ff
    if trainer == "ff":
        assert "layer1/goodness_pos" in final
    else:
        assert "train/loss" in final


def test_recipes_learn_synthetic_classes(run_cli, synthetic_data_dir, tmp_path):
    overrides = [*COMMON, "model.hidden=[64,64]", "train.epochs=4"]

    result = run_cli("train", "--recipe", "hinton-mnist-jitter", *set_options(overrides),
                     "--data-dir", synthetic_data_dir, "--out", tmp_path / "run", "--quiet")

    assert result.code == 0, result.err
    assert read_records(tmp_path / "run")[-1]["test/error_softmax"] < 50.0


@pytest.mark.parametrize("recipe", ["hinton-cifar10-2layer-minssq", "hinton-cifar10-3layer-maxssq"])
@pytest.mark.parametrize("trainer", ["ff", "backprop"])
def test_cifar_recipe_runs_from_cli(recipe, trainer, run_cli, tmp_path):
    from variants.cifar_helpers import write_synthetic_cifar

    write_synthetic_cifar(tmp_path / "data", name="cifar10", per_file=20)
    overrides = ["data.split='full'", "train.epochs=1", "train.batch_size=10", "train.eval_batch_size=10",
                 "data.train_limit=20", "data.eval_limit=10", "recurrent.iterations=3", "recurrent.eval_first=2",
                 "recurrent.eval_last=3", f"trainer={trainer}", "train.device='cpu'"]

    result = run_cli("train", "--recipe", recipe, *set_options(overrides), "--data-dir", tmp_path / "data",
                     "--out", tmp_path / "run", "--quiet")

    assert result.code == 0, result.err
    final = read_records(tmp_path / "run")[-1]
    assert "test/error_softmax" in final
    assert ("test/error_goodness" in final) == (trainer == "ff")


def test_eval_limit_takes_evenly_spaced_samples(synthetic_data_dir):
    config = load_config("hinton-mnist-jitter", ["data.eval_limit=30", "data.train_limit=70", "train.device='cpu'"])
    full = load_config("hinton-mnist-jitter", ["train.device='cpu'"])

    data = load_training_data(config, str(synthetic_data_dir), torch.device("cpu"))
    reference = load_training_data(full, str(synthetic_data_dir), torch.device("cpu"))

    assert data.train_images.shape[0] == 70
    test_images = data.eval_splits["test"][0]
    assert test_images.shape[0] == 30
    assert torch.equal(test_images, reference.eval_splits["test"][0][::10])


@pytest.mark.parametrize(
    "overrides",
    [
        ("negatives.kind='hybrid'", "data.jitter=2"),
        ("recurrent.enabled=true", "recurrent.iterations=3", "recurrent.eval_first=1", "recurrent.eval_last=2"),
        ("trainer='backprop'", "data.jitter=1"),
    ],
    ids=["unsupervised-jitter", "recurrent", "backprop"],
)
def test_state_dict_resumes_exactly(overrides, synthetic_data_dir):
    config = load_config("mnist-quick", ["model.hidden=[16,16]", "train.epochs=2", "train.batch_size=50",
                                         "data.limit=200", "train.device='cpu'", *overrides])
    data = load_training_data(config, str(synthetic_data_dir), torch.device("cpu"))

    straight = make_trainer(config, data, torch.device("cpu"))
    straight.train_epoch(progress=False)
    state = copy.deepcopy(straight.state_dict())  # state_dict() shares the live tensors
    second_straight = straight.train_epoch(progress=False)

    resumed = make_trainer(config, data, torch.device("cpu"))
    resumed.load_state_dict(state)
    second_resumed = resumed.train_epoch(progress=False)

    timing = ("epoch_time_s", "samples_per_s")
    assert {k: v for k, v in second_straight.items() if k not in timing} == {
        k: v for k, v in second_resumed.items() if k not in timing
    }
    for a, b in zip(straight.network.state_dict().values(), resumed.network.state_dict().values()):
        assert torch.equal(a, b)
