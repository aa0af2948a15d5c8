import pytest

from forwardforward.config import (
    RunConfig,
    apply_overrides,
    check_choice,
    config_from_dict,
    config_to_dict,
    load_config,
    read_recipe,
    recipe_names,
)
from forwardforward.errors import UsageError


def test_shipped_recipes_are_listed():
    assert {"mnist-quick", "hinton-matlab-mnist", "hinton-mnist-4x2000"} <= set(recipe_names())


@pytest.mark.parametrize("name", recipe_names())
def test_every_recipe_loads(name):
    config = load_config(name)
    assert config.name == name
    assert config.description


def test_matlab_recipe_settings():
    config = load_config("hinton-matlab-mnist")
    assert config.model.hidden == (1000, 1000, 1000)
    assert config.train.batch_size == 100
    assert config.train.epochs == 100
    assert config.optimizer.lr == 0.005
    assert config.optimizer.weight_decay == 0.002
    assert config.model.peer_strength == 0.03
    assert config.negatives.kind == "hard"


def test_overrides_parse_toml_values():
    config = load_config("mnist-quick", ["model.hidden=[64, 32]", "train.epochs=2", "optimizer.name=adam",
                                         "negatives.temperature=0.5", "train.shuffle=false"])
    assert config.model.hidden == (64, 32)
    assert config.train.epochs == 2
    assert config.optimizer.name == "adam"
    assert config.negatives.temperature == 0.5
    assert config.train.shuffle is False


def test_int_accepted_for_float():
    assert load_config("mnist-quick", ["optimizer.lr=1"]).optimizer.lr == 1.0


@pytest.mark.parametrize(
    "override, message",
    [
        ("nope.x=1", "unknown recipe key 'nope'"),
        ("train.nope=1", "unknown recipe key 'train.nope'"),
        ("train.epochs=abc", "train.epochs must be an integer"),
        ("train.epochs=1.5", "train.epochs must be an integer"),
        ("train.epochs=0", "train.epochs must be positive"),
        ("optimizer.lr=-1", "optimizer.lr must not be negative"),
        ("negatives.kind=x", "negatives.kind = 'x' is not valid"),
        ("model.hidden=5", "model.hidden must be a list"),
        ("model.hidden=[]", "model.hidden must list positive widths"),
        ("model.hidden=[10, 0]", "model.hidden must list positive widths"),
        ("train.skip_first=3", "leaves no layer"),
        ("train.shuffle=1", "must be true or false"),
        ("train", "--set expects KEY=VALUE"),
        ("train.epochs.x=1", "is a value, not a table"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_config("mnist-quick", [override])


def test_unknown_recipe_lists_shipped():
    with pytest.raises(UsageError, match="mnist-quick"):
        read_recipe("no-such-recipe")


def test_recipe_file_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[model]\nhidden = [10, 10]\n')
    config = load_config(str(path))
    assert config.name == "mine"
    assert config.model.hidden == (10, 10)


def test_invalid_toml_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[model\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        read_recipe(str(path))


def test_missing_recipe_file(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        read_recipe(str(tmp_path / "absent.toml"))


def test_config_round_trips_through_dict():
    config = load_config("hinton-matlab-mnist", ["model.threshold=5.0"])
    assert config_from_dict(config_to_dict(config)) == config


def test_overrides_leave_input_untouched():
    values = {"train": {"epochs": 3}}
    apply_overrides(values, ["train.epochs=5"])
    assert values == {"train": {"epochs": 3}}


def test_defaults_build():
    assert isinstance(config_from_dict({}), RunConfig)


def test_check_choice_names_key_value_and_choices():
    check_choice("model.kind", "fc", ("fc", "conv"))  # an allowed value passes silently

    with pytest.raises(UsageError, match=r"^model.kind = 'mlp' is not valid; choose one of fc, conv$"):
        check_choice("model.kind", "mlp", ("fc", "conv"))
