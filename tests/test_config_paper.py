"""Configuration keys added for the paper's recipes: trainer, local layers, recurrence, data."""

import pytest

from forwardforward.config import config_from_dict, load_config, recipe_names
from forwardforward.errors import UsageError


def test_trainer_choice_checked():
    with pytest.raises(UsageError, match="trainer = 'sgd' is not valid; choose one of ff, backprop"):
        config_from_dict({"trainer": "sgd"})


def test_local_kind_needs_layers():
    with pytest.raises(UsageError, match=r"\[\[model.local\]\]"):
        config_from_dict({"model": {"kind": "local"}})


def test_local_layer_sizes_checked():
    with pytest.raises(UsageError, match=r"model.local\[1\].kernel must be positive, got 0"):
        config_from_dict({"model": {"kind": "local", "local": [{"channels": 4, "kernel": 3}, {"channels": 4}]}})


def test_local_layer_unknown_key():
    with pytest.raises(UsageError, match="unknown recipe key 'model.local\\[0\\].size'"):
        config_from_dict({"model": {"kind": "local", "local": [{"channels": 4, "size": 3}]}})


def test_recurrent_window_checked():
    with pytest.raises(UsageError, match="eval_first = 6 and eval_last = 5"):
        config_from_dict({"recurrent": {"eval_first": 6}})
    with pytest.raises(UsageError, match="damping must be in"):
        config_from_dict({"recurrent": {"damping": 1.5}})


def test_negative_jitter_rejected():
    with pytest.raises(UsageError, match="data.jitter must not be negative"):
        config_from_dict({"data": {"jitter": -1}})


def test_skip_first_counts_local_layers():
    with pytest.raises(UsageError, match="leaves no layer of 1"):
        config_from_dict({"model": {"kind": "local", "local": [{"channels": 4, "kernel": 3}]},
                          "train": {"skip_first": 1}})


@pytest.mark.parametrize("name", [n for n in recipe_names() if n.startswith(("hinton-mnist-", "hinton-cifar10-"))])
def test_paper_recipes_load(name):
    config = load_config(name)

    assert config.trainer == "ff"
    assert config.train.epochs >= 60


def test_paper_recipe_settings():
    assert load_config("hinton-mnist-unsupervised").negatives.kind == "hybrid"
    assert load_config("hinton-mnist-jitter").data.jitter == 2
    recurrent = load_config("hinton-mnist-recurrent").recurrent
    assert (recurrent.iterations, recurrent.damping, recurrent.eval_first, recurrent.eval_last) == (8, 0.3, 3, 5)
    assert load_config("hinton-cifar10-3layer-minssq").model.goodness == "negative_sum_of_squares"
    assert len(load_config("hinton-cifar10-3layer-minssq").model.local) == 3
