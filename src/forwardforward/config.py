"""Run configuration: frozen dataclasses read from recipe TOML files with strict checking.

A recipe is a TOML file whose tables match the dataclasses below (`[data]`, `[model]`,
`[optimizer]`, `[readout]`, `[readout.optimizer]`, `[negatives]`, `[train]`). Unknown keys and
values of the wrong type raise `UsageError` naming the key, so a typo never silently falls back
to a default. `--set KEY=VALUE` overrides use the same dotted keys.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import UsageError
from .optim import OptimizerConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class DataConfig:
    """Data set and split to train on.

    Attributes:
        dataset: registered data set name (`mnist`, `fashion-mnist`).
        split: `hinton` (50,000 train / 10,000 validation / 10,000 test) or `full`
            (60,000 train / 10,000 test).
        limit: keep only the first N samples of every split (quick checks); None keeps all.
        train_limit: keep only the first N training samples; None keeps all.
        eval_limit: keep N evenly spaced samples of the validation and test splits (every
            (n // N)-th), which keeps a class-sorted test file balanced; None keeps all.
        jitter: shift each training image by up to this many pixels in each direction,
            drawn anew for every batch on the training device; 0 disables it.
    """

    dataset: str = "mnist"
    split: str = "hinton"
    limit: int | None = None
    train_limit: int | None = None
    eval_limit: int | None = None
    jitter: int = 0


@dataclass(frozen=True)
class LocalLayerConfig:
    """One locally connected layer: a filter bank per output location, with no weight sharing.

    Attributes:
        channels: output channels at every location.
        kernel: side of the square receptive field, in input locations.
        stride: step between neighbouring receptive fields.
        padding: zero padding on every side of the input map.
    """

    channels: int = 0
    kernel: int = 0
    stride: int = 1
    padding: int = 0


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and layer-local objective.

    Attributes:
        hidden: widths of the fully connected hidden layers, bottom first.
        goodness: `sum_of_squares` or `mean_of_squares`.
        threshold: theta; None means the goodness's default (number of units for the sum).
        objective: `threshold` or `symba`.
        symba_alpha: scale of the SymBa objective.
        peer_strength: peer normalisation strength (Matlab units); 0 disables it.
        peer_momentum: momentum of each unit's running mean activity.
        label_strength: value of the one-hot label pixel.
        init: `hinton` (N(0, 1/fan_in) weights, zero biases) or `torch`.
        kind: `fully_connected` (layers of `hidden` widths) or `local` (the locally connected
            layers of `local`, on the data set's image shape).
        local: the locally connected layers, bottom first, when `kind = "local"`.
    """

    hidden: tuple[int, ...] = (1000, 1000, 1000)
    goodness: str = "sum_of_squares"
    threshold: float | None = None
    objective: str = "threshold"
    symba_alpha: float = 4.0
    peer_strength: float = 0.03
    peer_momentum: float = 0.9
    label_strength: float = 1.0
    init: str = "hinton"
    kind: str = "fully_connected"
    local: tuple[LocalLayerConfig, ...] = ()


@dataclass(frozen=True)
class ReadoutConfig:
    """The linear softmax read-out trained alongside the blocks.

    Attributes:
        enabled: train and report the read-out.
        bias: learn a bias per class (the Matlab code's read-out has none).
        optimizer: its optimizer; Matlab: learning rate 0.1, weight cost 0.003.
    """

    enabled: bool = True
    bias: bool = True
    optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(lr=0.1, weight_decay=0.003)
    )


@dataclass(frozen=True)
class NegativesConfig:
    """Choice of negative data.

    Attributes:
        kind: `random` (uniform over wrong labels), `hard` (sampled from a softmax over
            the wrong labels), `hybrid` (unsupervised: no label at all, and negatives
            are two real images mixed under a blurred random mask), `corrupt` (the true label
            on a corrupted copy of the image: a shift, a random mask and noise) or
            `adversarial` (the true label on an image from a generator trained to make the
            network score it as positive).
        hard_source: scores of the `hard` softmax: `readout` (the linear read-out's logits on
            the neutral pass, as in Hinton's Matlab code) or `goodness` (accumulated goodness
            per label, which costs one pass per label).
        temperature: divides the scores before the softmax.
        blur_passes: blurs of the random bit image behind a `hybrid` mask; more passes give
            larger regions.
        noise_std: `corrupt`: standard deviation of the added Gaussian noise.
        mask_fraction: `corrupt`: probability that a pixel is set to 0.
        max_shift: `corrupt`: largest random translation in pixels.
        generator_lr: `adversarial`: Adam learning rate of the generator.
        latent_dim: `adversarial`: size of the generator's noise input.
        generator_hidden: `adversarial`: width of the generator's hidden layer.
    """

    kind: str = "hard"
    hard_source: str = "readout"
    temperature: float = 1.0
    blur_passes: int = 6
    noise_std: float = 0.3
    mask_fraction: float = 0.3
    max_shift: int = 3
    generator_lr: float = 0.001
    latent_dim: int = 64
    generator_hidden: int = 512


@dataclass(frozen=True)
class TrainConfig:
    """The training loop.

    Attributes:
        epochs: epochs of the simultaneous schedule, or per layer for the greedy one.
        batch_size: samples per minibatch.
        schedule: `simultaneous` (every layer updates on every batch) or `greedy` (layer by
            layer, lower layers frozen).
        lr_schedule: `hinton` (constant for the first half, then linear decay towards zero)
            or `constant`.
        skip_first: bottom layers left out of goodness prediction and of the read-out.
        eval_every: evaluate on the validation and test splits every N epochs (always after
            the last one).
        eval_batch_size: samples per evaluation batch (each tried with every label).
        seed: seeds initialisation, shuffling and negative sampling.
        device: `auto`, `cpu`, `cuda` or a device string such as `cuda:1`.
        shuffle: reshuffle the training set every epoch.
        precision: `float32`, or `bfloat16` to run the matrix products of training and
            evaluation under bfloat16 autocast (goodness, normalisation and losses stay
            float32). On `hinton-matlab-mnist` it changed the test error by +0.06 (goodness)
            and -0.02 (softmax) points (docs/results.md).
        compile: compile each block's layer-local loss with `torch.compile`.
        backend: `torch`, or `jax` for the JAX backend (needs `forwardforward[jax]`; the
            simultaneous schedule only).
    """

    epochs: int = 100
    batch_size: int = 100
    schedule: str = "simultaneous"
    lr_schedule: str = "hinton"
    skip_first: int = 1
    eval_every: int = 1
    eval_batch_size: int = 1000
    seed: int = 17
    device: str = "auto"
    shuffle: bool = True
    precision: str = "float32"
    compile: bool = False
    backend: str = "torch"


@dataclass(frozen=True)
class RecurrentConfig:
    """The recurrent network with top-down connections (Hinton 2022, static images as video).

    Attributes:
        enabled: run the blocks as a recurrent network whose top layer is the label.
        iterations: synchronous updates of every hidden layer per sample.
        damping: weight of the old state: `h <- damping * h + (1 - damping) * new`.
        eval_first: first iteration (1-based) whose goodness counts for prediction.
        eval_last: last iteration (1-based, inclusive) whose goodness counts.
    """

    enabled: bool = False
    iterations: int = 8
    damping: float = 0.3
    eval_first: int = 3
    eval_last: int = 5


@dataclass(frozen=True)
class BaselineConfig:
    """The backprop baseline (`trainer = "backprop"`): the same layers, trained end to end.

    Attributes:
        optimizer: its optimizer, applied to every layer and the softmax output layer.
    """

    optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(name="adam", lr=0.001, weight_decay=0.0)
    )


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run of the core FF network (`variant = "ff"`).

    `trainer` is `ff` (layer-local Forward-Forward training) or `backprop` (the same
    bottom-up layers plus a softmax layer, trained end to end with cross-entropy).
    """

    name: str = "custom"
    description: str = ""
    variant: str = "ff"
    trainer: str = "ff"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    negatives: NegativesConfig = field(default_factory=NegativesConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    recurrent: RecurrentConfig = field(default_factory=RecurrentConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)


_CHOICES = {
    "trainer": ("ff", "backprop"),
    "model.kind": ("fully_connected", "local"),
    "baseline.optimizer.name": ("smoothed_sgd", "sgd", "adam"),
    "data.split": ("hinton", "full"),
    "model.goodness": ("sum_of_squares", "mean_of_squares", "negative_sum_of_squares"),
    "model.objective": ("threshold", "symba"),
    "model.init": ("hinton", "torch"),
    "optimizer.name": ("smoothed_sgd", "sgd", "adam", "adamw"),
    "readout.optimizer.name": ("smoothed_sgd", "sgd", "adam", "adamw"),
    "negatives.kind": ("random", "hard", "hybrid", "corrupt", "adversarial"),
    "negatives.hard_source": ("readout", "goodness"),
    "train.schedule": ("simultaneous", "greedy"),
    "train.lr_schedule": ("hinton", "constant"),
    "train.precision": ("float32", "bfloat16"),
    "train.backend": ("torch", "jax"),
}
_POSITIVE = {"train.epochs", "train.batch_size", "train.eval_every", "train.eval_batch_size",
             "data.limit", "negatives.temperature", "data.eval_limit", "data.train_limit", "recurrent.iterations",
             "recurrent.eval_first", "recurrent.eval_last", "negatives.generator_lr", "negatives.latent_dim",
             "negatives.generator_hidden"}
_NON_NEGATIVE = {"optimizer.lr", "optimizer.weight_decay", "readout.optimizer.lr",
                 "readout.optimizer.weight_decay", "model.peer_strength", "train.skip_first",
                 "data.jitter", "negatives.blur_passes", "baseline.optimizer.lr",
                 "baseline.optimizer.weight_decay", "recurrent.damping",
                 "negatives.noise_std", "negatives.mask_fraction", "negatives.max_shift"}


def _convert(value: Any, annotation: Any, key: str) -> Any:
    """Check `value` against a dataclass field's type and convert lists to tuples."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{key} must be a list, got {value!r}; write it as [1000, 1000]")
        return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise UsageError(f"{key} must be a table of settings, got {value!r}")
        return _from_dict(annotation, value, key)
    if annotation is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{key} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{key} must be an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{key} must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise UsageError(f"{key} must be a string, got {value!r}")
        return value
    raise AssertionError(f"unsupported config type {annotation!r} for {key}")


def _from_dict(cls: type, values: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in names:
            raise UsageError(
                f"unknown recipe key {dotted!r}; valid keys here are: {', '.join(sorted(names))}"
            )
        converted = _convert(value, hints[key], dotted)
        if not (dotted in _CORE_ONLY_CHOICES and cls is not ModelConfig):
            _check_value(dotted, converted)
        kwargs[key] = converted
    return cls(**kwargs)


# Keys whose allowed values belong to the core's classes: a variant's own model class (such
# as VFF-Net's, whose `kind` is `fc` or `conv`) checks them itself.
_CORE_ONLY_CHOICES = {"model.kind"}


def check_choice(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    """Check that the setting `key` is one of the `allowed` names.

    Raises:
        UsageError: `value` is not in `allowed`. The message names the key, the value and the
            choices.
    """
    if value not in allowed:
        raise UsageError(f"{key} = {value!r} is not valid; choose one of {', '.join(allowed)}")


def _check_value(key: str, value: Any) -> None:
    if key in _CHOICES:
        check_choice(key, value, _CHOICES[key])
    if value is None or isinstance(value, (tuple, dict)):
        return
    if key in _POSITIVE and value <= 0:
        raise UsageError(f"{key} must be positive, got {value!r}")
    if key in _NON_NEGATIVE and value < 0:
        raise UsageError(f"{key} must not be negative, got {value!r}")


# Variants with a configuration of their own, chosen by a recipe's top-level `variant` key.
# Each entry names the module and class of that configuration, imported only when needed.
VARIANT_CONFIGS = {
    "scff": ("forwardforward.variants.scff_config", "SCFFRunConfig"),
    "nca": ("forwardforward.variants.nca_config", "NCARunConfig"),
}


def _variant_from_dict(values: dict) -> Any:
    import importlib

    variant = values["variant"]
    module_name, class_name = VARIANT_CONFIGS[variant]
    return _from_dict(getattr(importlib.import_module(module_name), class_name), values)


# Variants whose recipes have their own configuration class: `variant = NAME` in a recipe
# hands the whole recipe to that module's `config_from_dict`. Imported on first use, because
# the variant modules import this one.
VARIANT_MODULES = {
    "vffnet": "forwardforward.variants.vffnet",
    "df": "forwardforward.variants.distance_forward",
}


def variant_module(name: str):
    """Import the module of a registered variant.

    Raises:
        UsageError: `name` is neither `ff` nor a registered variant.
    """
    if not isinstance(name, str) or name not in VARIANT_MODULES:
        choices = ", ".join(["ff", *sorted([*VARIANT_MODULES, *VARIANT_CONFIGS])])
        raise UsageError(f"variant = {name!r} is not valid; choose one of {choices}")
    return importlib.import_module(VARIANT_MODULES[name])


def dataclass_from_dict(cls: type, values: dict, prefix: str = "") -> Any:
    """Build the dataclass `cls` from nested dictionaries with the checks of the core's keys.

    The same dotted keys (`train.epochs`, `optimizer.lr`, ...) get the same range checks as in
    a core recipe, so variants that reuse the core's tables reuse their checks too.

    A top-level `variant` other than `ff` builds that variant's configuration instead (see
    `VARIANT_CONFIGS`), with the same strict checking of keys and types.

    Raises:
        UsageError: an unknown key or variant, a value of the wrong type, or a value out of range.
    """
    return _from_dict(cls, values, prefix)


def config_from_dict(values: dict) -> RunConfig:
    """Build a `RunConfig` from nested dictionaries, as read from TOML.

    A recipe with `variant` other than `ff` is built by that variant's module and returns
    its configuration class instead.

    Raises:
        UsageError: an unknown key or variant, a value of the wrong type, or a value out of range.
    """
    variant = values.get("variant", "ff")
    if variant in VARIANT_CONFIGS:
        return _variant_from_dict(values)
    if variant != "ff":
        return variant_module(variant).config_from_dict(values)
    config = _from_dict(RunConfig, values)
    if any(w <= 0 for w in config.model.hidden) or not config.model.hidden:
        raise UsageError(f"model.hidden must list positive widths, got {list(config.model.hidden)}")
    _check_local_layers(config.model)
    _check_recurrent(config.recurrent)
    num_layers = len(config.model.local) if config.model.kind == "local" else len(config.model.hidden)
    if config.train.skip_first >= num_layers:
        raise UsageError(
            f"train.skip_first = {config.train.skip_first} leaves no layer of "
            f"{num_layers} to predict from; use at most {num_layers - 1}"
        )
    return config


def _check_local_layers(model: ModelConfig) -> None:
    if model.kind != "local":
        return
    if not model.local:
        raise UsageError(
            'model.kind = "local" needs at least one [[model.local]] table with channels and kernel'
        )
    for index, layer in enumerate(model.local):
        for name in ("channels", "kernel", "stride"):
            if getattr(layer, name) <= 0:
                raise UsageError(
                    f"model.local[{index}].{name} must be positive, got {getattr(layer, name)}; "
                    "set it in that [[model.local]] table"
                )
        if layer.padding < 0:
            raise UsageError(f"model.local[{index}].padding must not be negative, got {layer.padding}")


def _check_recurrent(recurrent: RecurrentConfig) -> None:
    if not 0.0 <= recurrent.damping < 1.0:
        raise UsageError(f"recurrent.damping must be in [0, 1), got {recurrent.damping}")
    if not recurrent.eval_first <= recurrent.eval_last <= recurrent.iterations:
        raise UsageError(
            f"recurrent.eval_first = {recurrent.eval_first} and eval_last = {recurrent.eval_last} must "
            f"satisfy eval_first <= eval_last <= iterations = {recurrent.iterations}"
        )


def config_to_dict(config: RunConfig) -> dict:
    """Return the config as nested dictionaries of plain values (tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(config))


def recipe_names() -> list[str]:
    """Names of the recipes shipped with the package."""
    folder = resources.files("forwardforward") / "recipes"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def read_recipe(name_or_path: str) -> dict:
    """Read a shipped recipe by name, or any recipe file by path, as nested dictionaries.

    Raises:
        UsageError: no such recipe or file, or the file is not valid TOML.
    """
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.exists():
        if not path.is_file():
            raise UsageError(f"recipe file not found: {name_or_path}")
        text = path.read_text(encoding="utf-8")
        source = str(path)
    else:
        if name_or_path not in recipe_names():
            raise UsageError(
                f"unknown recipe {name_or_path!r}; shipped recipes are: {', '.join(recipe_names())} "
                "(or give the path of a .toml file)"
            )
        text = (resources.files("forwardforward") / "recipes" / f"{name_or_path}.toml").read_text(
            encoding="utf-8"
        )
        source = name_or_path
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"recipe {source} is not valid TOML: {exc}") from None
    values.setdefault("name", path.stem if source == str(path) else name_or_path)
    return values


def parse_override(assignment: str) -> tuple[list[str], Any]:
    """Split `KEY=VALUE` into a dotted key path and a TOML value (a bare word stays a string).

    Raises:
        UsageError: no `=` or an empty key.
    """
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--set expects KEY=VALUE, such as train.epochs=5, got {assignment!r}")
    try:
        value = tomllib.loads(f"value = {raw.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.split("."), value


def apply_overrides(values: dict, assignments: list[str]) -> dict:
    """Return a copy of recipe dictionaries with `--set` assignments applied.

    Raises:
        UsageError: a malformed assignment or a key that descends into a plain value.
    """
    import copy

    result = copy.deepcopy(values)
    for assignment in assignments:
        parts, value = parse_override(assignment)
        node = result
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UsageError(f"--set {assignment}: {part!r} is a value, not a table of settings")
            node = child
        node[parts[-1]] = value
    return result


def load_config(recipe: str, overrides: list[str] | None = None) -> RunConfig:
    """Read a recipe, apply `--set` overrides and validate the result.

    Raises:
        UsageError: see `read_recipe`, `apply_overrides` and `config_from_dict`.
    """
    return config_from_dict(apply_overrides(read_recipe(recipe), overrides or []))
