"""The FF model in JAX: its static settings, its state, the training step and prediction.

Everything here is a pure function of `(spec, state, batch, key)`. `FFModel` binds the settings,
the Flax modules and the Optax optimizers once and compiles the step with `jax.jit`. The step
follows the simultaneous schedule: every block trains on every batch. Locality comes from the
`stop_gradient` at each block's input (see `modules.FFNetwork`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..config import RunConfig
from ..errors import UsageError
from ..goodness import default_threshold
from ..optim import OptimizerConfig
from .functional import get_goodness, peer_loss, peer_update, symba_loss, threshold_loss
from .labels import hard_wrong_labels, overlay_labels, overlay_neutral, random_wrong_labels
from .modules import FFNetwork, LinearReadout
from .optim import Schedule, build_optimizer

NEGATIVE_KINDS = ("random", "hard-readout", "hard-goodness")


@dataclass(frozen=True)
class FFSpec:
    """Static settings of an FF model, fixed at compile time (hashable).

    Attributes:
        in_features: input width.
        hidden: block widths, bottom first.
        num_classes: number of labels.
        label_strength: height of the one-hot label overlay.
        goodness: `sum_of_squares` or `mean_of_squares`.
        thresholds: theta of each block's threshold objective.
        objective: `threshold` or `symba`.
        symba_alpha: scale of the SymBa objective.
        peer_strength: peer-normalisation strength in Matlab units; 0 disables it.
        peer_momentum: momentum of each unit's running mean activity.
        init: `hinton` or `torch` (see `modules.FFDense`).
        readout: train the linear read-out alongside the blocks.
        readout_bias: give the read-out a bias.
        skip_first: bottom blocks left out of goodness prediction and the read-out.
        negatives: `random`, `hard-readout` (softmax of the read-out's logits, as Hinton's
            Matlab code) or `hard-goodness` (softmax of the accumulated goodness per label).
        temperature: divides the scores of hard negatives before the softmax.
    """

    in_features: int
    hidden: tuple[int, ...]
    num_classes: int = 10
    label_strength: float = 1.0
    goodness: str = "sum_of_squares"
    thresholds: tuple[float, ...] = ()
    objective: str = "threshold"
    symba_alpha: float = 4.0
    peer_strength: float = 0.0
    peer_momentum: float = 0.9
    init: str = "hinton"
    readout: bool = True
    readout_bias: bool = True
    skip_first: int = 1
    negatives: str = "hard-readout"
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if len(self.thresholds) != len(self.hidden):
            raise UsageError(f"need one threshold per block ({len(self.hidden)}), got {len(self.thresholds)}")
        if self.negatives not in NEGATIVE_KINDS:
            raise UsageError(f"unknown negatives {self.negatives!r}; choose one of {', '.join(NEGATIVE_KINDS)}")
        if self.negatives == "hard-readout" and not self.readout:
            raise UsageError(
                "negatives.hard_source = 'readout' needs the read-out; set readout.enabled = true "
                "or negatives.hard_source = 'goodness'"
            )
        if not 0 <= self.skip_first < len(self.hidden):
            raise UsageError(
                f"cannot skip {self.skip_first} of {len(self.hidden)} blocks when predicting; "
                f"use a value from 0 to {len(self.hidden) - 1}"
            )
        if self.num_classes < 2:
            raise UsageError(f"num_classes must be at least 2, got {self.num_classes}")

    @classmethod
    def from_config(cls, config: RunConfig, in_features: int, num_classes: int) -> "FFSpec":
        """Read the settings of a run configuration, as the PyTorch trainer interprets them.

        Raises:
            UsageError: a setting that the JAX backend does not support, or an invalid one.
        """
        model, negatives = config.model, config.negatives
        if config.train.schedule != "simultaneous":
            raise UsageError(
                f"the JAX backend trains with the simultaneous schedule only, got train.schedule = "
                f"{config.train.schedule!r}; use --backend torch for the greedy schedule"
            )
        # Settings of the PyTorch trainer that this backend does not implement.
        unsupported = {
            "trainer": (config.trainer, "ff"),
            "recurrent.enabled": (config.recurrent.enabled, False),
            "model.kind": (model.kind, "fully_connected"),
            "data.jitter": (config.data.jitter, 0),
            "train.precision": (config.train.precision, "float32"),
            "train.compile": (config.train.compile, False),
        }
        for key, (value, supported) in unsupported.items():
            if value != supported:
                raise UsageError(
                    f"the JAX backend supports only {key} = {supported!r}, got {value!r}; "
                    "use --backend torch for this setting"
                )
        if model.goodness not in ("sum_of_squares", "mean_of_squares"):
            raise UsageError(
                f"the JAX backend has the sum and mean of squares only, got model.goodness = "
                f"{model.goodness!r}; use --backend torch for this setting"
            )
        if negatives.kind not in ("random", "hard"):
            raise UsageError(
                f"the JAX backend draws random or hard negative labels only, got negatives.kind = "
                f"{negatives.kind!r}; use --backend torch for this setting"
            )
        hidden = tuple(int(w) for w in model.hidden)
        if model.threshold is None:
            thresholds = tuple(default_threshold(model.goodness, w) for w in hidden)
        else:
            thresholds = (float(model.threshold),) * len(hidden)
        kind = "random" if negatives.kind == "random" else f"hard-{negatives.hard_source}"
        return cls(
            in_features=in_features, hidden=hidden, num_classes=num_classes,
            label_strength=model.label_strength, goodness=model.goodness, thresholds=thresholds,
            objective=model.objective, symba_alpha=model.symba_alpha,
            peer_strength=model.peer_strength, peer_momentum=model.peer_momentum, init=model.init,
            readout=config.readout.enabled, readout_bias=config.readout.bias,
            skip_first=config.train.skip_first, negatives=kind, temperature=negatives.temperature,
        )


class FFState(NamedTuple):
    """Everything that changes during training, as one pytree.

    Attributes:
        params: the network's Flax variables, `{"params": {"block0": ..., ...}}`.
        readout_params: the read-out's Flax variables, or None without a read-out.
        block_opt_states: one Optax state per block.
        readout_opt_state: the read-out's Optax state, or None.
        peer_means: one `(units,)` running mean activity per block (peer normalisation).
    """

    params: dict
    readout_params: dict | None
    block_opt_states: tuple
    readout_opt_state: optax.OptState | None
    peer_means: tuple[jax.Array, ...]


class FFModel:
    """The Flax modules, per-layer Optax optimizers and compiled functions of one FF model.

    Args:
        spec: static settings.
        optimizer: settings of every block's optimizer.
        readout_optimizer: settings of the read-out's optimizer.
        gain: learning-rate gain as a function of the step count; None keeps it at 1.

    Compiled functions (each a `jax.jit` of the method with a leading underscore):
        `train_step(state, images, labels, key) -> (state, stats)` updates the read-out and
        every block on one minibatch of `(batch, in_features)` images and `(batch,)` labels,
        with negatives drawn from `key`. `stats` is `(3 * num_blocks + 2,)`: loss, mean
        positive and mean negative goodness per block, then the read-out's loss and its number
        of wrong predictions before its step. `state` is donated (do not reuse it).
        `train_step_with_negatives(state, images, labels, negative_labels)` takes given
        negatives instead, and does not donate `state`.
        `train_step_at(state, all_images, all_labels, index, epoch_key, batch_number)` gathers
        the batch `index` on the device and uses `fold_in(epoch_key, batch_number)` as key.
        `count_errors(state, images, labels)` returns the numbers of wrong predictions by
        goodness, by softmax and by each block alone, `(2 + num_blocks,)`.
    """

    def __init__(
        self,
        spec: FFSpec,
        optimizer: OptimizerConfig,
        readout_optimizer: OptimizerConfig | None = None,
        gain: Schedule | None = None,
    ) -> None:
        self.spec = spec
        self.goodness_fn = get_goodness(spec.goodness)
        self.network = FFNetwork(hidden=spec.hidden, weight_init=spec.init)
        self.readout = LinearReadout(spec.num_classes, spec.skip_first, spec.readout_bias) if spec.readout else None
        self.block_tx = tuple(build_optimizer(optimizer, gain) for _ in spec.hidden)
        self.readout_tx = build_optimizer(readout_optimizer or OptimizerConfig(), gain) if spec.readout else None
        self.trace_count = 0  # how often the training step was traced (compiled)
        self.train_step = jax.jit(self._train_step, donate_argnums=0)
        self.train_step_with_negatives = jax.jit(self._train_step_with_negatives)
        self.train_step_at = jax.jit(self._train_step_at, donate_argnums=0)
        self.count_errors = jax.jit(self._count_errors)

    # -- state ------------------------------------------------------------------------------

    def init(self, key: jax.Array) -> FFState:
        """Initialise weights, optimizer states and peer means from a random key."""
        spec = self.spec
        params = self.network.init(key, jnp.zeros((1, spec.in_features), jnp.float32))
        readout_params = None
        readout_opt_state = None
        if self.readout is not None:
            acts = [jnp.zeros((1, w), jnp.float32) for w in spec.hidden]
            readout_params = self.readout.init(jax.random.fold_in(key, 1), acts)
            readout_opt_state = self.readout_tx.init(readout_params)
        block_opt_states = tuple(
            tx.init(params["params"][f"block{i}"]) for i, tx in enumerate(self.block_tx)
        )
        peer_means = tuple(jnp.full((w,), 0.5, jnp.float32) for w in spec.hidden)
        return FFState(params, readout_params, block_opt_states, readout_opt_state, peer_means)

    # -- forward passes ---------------------------------------------------------------------

    def activities(self, params: dict, x: jax.Array) -> list[jax.Array]:
        """Return each block's `(batch, units_l)` activity for `(batch, in_features)` labelled inputs."""
        return [h for _, h in self.network.apply(params, x)]

    def goodness_per_label(self, params: dict, images: jax.Array) -> jax.Array:
        """Compute every block's goodness for every label, with `vmap` over samples and labels.

        Args:
            params: the network's variables.
            images: `(batch, in_features)`; their label features are overwritten.

        Returns:
            `(batch, num_blocks, num_classes)` goodness.
        """
        spec = self.spec

        def one_sample(image: jax.Array) -> jax.Array:
            def one_label(label: jax.Array) -> jax.Array:
                x = overlay_labels(image[None], label[None], spec.num_classes, spec.label_strength)
                return jnp.stack([self.goodness_fn(h)[0] for h in self.activities(params, x)])  # (blocks,)

            return jax.vmap(one_label, out_axes=1)(jnp.arange(spec.num_classes))  # (blocks, classes)

        return jax.vmap(one_sample)(images)

    def predict_by_goodness(self, params: dict, images: jax.Array) -> jax.Array:
        """Predict `(batch,)` labels by goodness summed over blocks `skip_first` and above."""
        goodness = self.goodness_per_label(params, images)  # (batch, blocks, classes)
        return jnp.argmax(jnp.sum(goodness[:, self.spec.skip_first :], axis=1), axis=1)

    def readout_logits(self, state: FFState, images: jax.Array) -> jax.Array:
        """Return the read-out's `(batch, num_classes)` logits on a neutral-label pass.

        Raises:
            UsageError: the model has no read-out.
        """
        if self.readout is None:
            raise UsageError("this model has no read-out; set readout.enabled = true")
        neutral = overlay_neutral(images, self.spec.num_classes, self.spec.label_strength)
        return self.readout.apply(state.readout_params, self.activities(state.params, neutral))

    # -- training ---------------------------------------------------------------------------

    def _readout_update(self, state: FFState, images: jax.Array, labels: jax.Array):
        # One step of the read-out on the neutral pass; the logits are from before the step.
        neutral = overlay_neutral(images, self.spec.num_classes, self.spec.label_strength)
        acts = self.activities(state.params, neutral)

        def loss_fn(readout_params):
            logits = self.readout.apply(readout_params, acts)
            loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
            return loss, logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.readout_params)
        updates, opt_state = self.readout_tx.update(grads, state.readout_opt_state, state.readout_params)
        params = optax.apply_updates(state.readout_params, updates)
        errors = jnp.sum(jnp.argmax(logits, axis=1) != labels).astype(jnp.float32)
        return params, opt_state, logits, jnp.stack([loss, errors])

    def _negative_labels(self, state: FFState, images, labels, logits, key) -> jax.Array:
        spec = self.spec
        if spec.negatives == "random":
            return random_wrong_labels(key, labels, spec.num_classes)
        if spec.negatives == "hard-readout":
            scores = logits
        else:
            goodness = self.goodness_per_label(state.params, images)  # (batch, blocks, classes)
            scores = jnp.sum(goodness[:, spec.skip_first :], axis=1)
        return hard_wrong_labels(key, scores, labels, spec.temperature)

    def _blocks_loss(self, params: dict, peer_means: tuple, x: jax.Array, batch: int):
        # Sum of every block's local loss on the concatenated (positive, negative) batch, and
        # as auxiliary output the metrics, the new peer means and each block's own total.
        spec = self.spec
        totals, stats, new_means = [], [], []
        for i, (z, h) in enumerate(self.network.apply(params, x)):
            g = self.goodness_fn(h)
            g_pos, g_neg = g[:batch], g[batch:]
            if spec.objective == "symba":
                loss = symba_loss(g_pos, g_neg, spec.symba_alpha)
            else:
                loss = threshold_loss(g_pos, g_neg, spec.thresholds[i])
            total = loss
            mean = peer_means[i]
            if spec.peer_strength > 0:
                # The running mean takes this batch first, then pulls, as in the PyTorch block.
                mean = peer_update(mean, h[:batch], spec.peer_momentum)
                total = total + peer_loss(z[:batch], mean, spec.peer_strength)
            totals.append(total)
            new_means.append(mean)
            stats.append(jnp.stack([loss, jnp.mean(g_pos), jnp.mean(g_neg)]))
        totals = jnp.stack(totals)
        return jnp.sum(totals), (jnp.stack(stats), tuple(new_means), totals)

    def _blocks_update(self, state: FFState, images, labels, negative_labels):
        spec = self.spec
        batch = images.shape[0]
        x_pos = overlay_labels(images, labels, spec.num_classes, spec.label_strength)
        x_neg = overlay_labels(images, negative_labels, spec.num_classes, spec.label_strength)
        x = jnp.concatenate([x_pos, x_neg])  # (2 batch, in_features)
        grads, (stats, peer_means, _) = jax.grad(self._blocks_loss, has_aux=True)(
            state.params, state.peer_means, x, batch
        )
        blocks, opt_states = {}, []
        for i, tx in enumerate(self.block_tx):
            name = f"block{i}"
            updates, opt_state = tx.update(grads["params"][name], state.block_opt_states[i], state.params["params"][name])
            blocks[name] = optax.apply_updates(state.params["params"][name], updates)
            opt_states.append(opt_state)
        return {"params": blocks}, tuple(opt_states), peer_means, stats

    def _step(self, state: FFState, images, labels, key, negative_labels):
        if images.ndim != 2 or images.shape[0] == 0:
            raise ValueError(f"a training step needs a non-empty (batch, features) batch, got shape {images.shape}")
        readout_params, readout_opt_state, logits = state.readout_params, state.readout_opt_state, None
        readout_stats = jnp.zeros(2, jnp.float32)
        if self.readout is not None:
            readout_params, readout_opt_state, logits, readout_stats = self._readout_update(state, images, labels)
        if negative_labels is None:
            negative_labels = self._negative_labels(state, images, labels, logits, key)
        params, opt_states, peer_means, stats = self._blocks_update(state, images, labels, negative_labels)
        new_state = FFState(params, readout_params, opt_states, readout_opt_state, peer_means)
        return new_state, jnp.concatenate([stats.reshape(-1), readout_stats])

    def _train_step(self, state: FFState, images: jax.Array, labels: jax.Array, key: jax.Array):
        """Update the read-out and every block on one minibatch (see `train_step`)."""
        self.trace_count += 1  # runs only while tracing, so it counts compilations
        return self._step(state, images, labels, key, None)

    def _train_step_with_negatives(self, state: FFState, images, labels, negative_labels):
        return self._step(state, images, labels, None, negative_labels)

    def _train_step_at(self, state: FFState, images, labels, index, epoch_key, batch_number):
        # The trainer's step: gather the batch on the device and derive its key from the epoch's.
        self.trace_count += 1
        key = jax.random.fold_in(epoch_key, batch_number)
        return self._step(state, images[index], labels[index], key, None)

    # -- evaluation -------------------------------------------------------------------------

    def _count_errors(self, state: FFState, images: jax.Array, labels: jax.Array) -> jax.Array:
        # (2 + blocks,) wrong predictions: by goodness, by softmax, then each block alone.
        goodness = self.goodness_per_label(state.params, images)  # (batch, blocks, classes)
        wrong_goodness = jnp.sum(jnp.argmax(jnp.sum(goodness[:, self.spec.skip_first :], axis=1), axis=1) != labels)
        wrong_layer = jnp.sum(jnp.argmax(goodness, axis=2) != labels[:, None], axis=0)
        wrong_softmax = jnp.zeros((), wrong_goodness.dtype)
        if self.readout is not None:
            wrong_softmax = jnp.sum(jnp.argmax(self.readout_logits(state, images), axis=1) != labels)
        return jnp.concatenate([jnp.stack([wrong_goodness, wrong_softmax]), wrong_layer.astype(wrong_goodness.dtype)])

