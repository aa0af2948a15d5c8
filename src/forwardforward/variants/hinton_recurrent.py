"""The recurrent FF network with top-down connections of Hinton (2022).

A static image is treated as a video of identical frames. The input image is the bottom layer
and the label is the top layer; both stay fixed. At every synchronous iteration each hidden
layer is recomputed from the RMS-normalised states of the layers below and above at the
previous iteration, and damped::

    h_l(t) = damping * h_l(t - 1) + (1 - damping) * ReLU(W_up x_below(t - 1) + W_down x_above(t - 1) + b)

Each layer has its own FF objective on its goodness at every iteration, with inputs detached
from the previous iteration, so training uses no backpropagation through time and no gradient
crosses layers. Prediction runs the network once per label (all labels batched) and picks the
label with the highest goodness, averaged over a window of iterations (3 to 5 for MNIST).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..architectures import block_settings, local_modules
from ..data.augment import jitter_images
from ..config import ModelConfig, RecurrentConfig, RunConfig
from ..errors import UsageError
from ..layers import LocalBlock, LocallyConnected2d, TwoSourceInput, _PEER_GRADIENT_SCALE
from ..normalization import rms_normalize
from ..training.trainer import Trainer


def _hinton_linear(in_features: int, out_features: int, init: str) -> nn.Linear:
    linear = nn.Linear(in_features, out_features)
    if init == "hinton":
        with torch.no_grad():
            linear.weight.normal_(0.0, 1.0 / math.sqrt(in_features))
            linear.bias.zero_()
    return linear


class RecurrentFFNetwork(nn.Module):
    """Hidden layers updated synchronously from the layers below and above, label on top.

    Args:
        blocks: one `LocalBlock` per hidden layer, bottom first, whose module is a
            `TwoSourceInput` taking `[x_below, x_above]`.
        num_classes: width of the label layer on top.
        iterations: synchronous updates per run.
        damping: weight of the old state in each update.
        eval_window: `(first, last)` 1-based iterations, inclusive, whose goodness and
            activities are averaged for prediction.
        label_strength: height of the one-hot label before normalisation.

    Raises:
        UsageError: no blocks, a damping outside [0, 1), or a window outside the iterations.
    """

    def __init__(
        self,
        blocks: Sequence[LocalBlock],
        num_classes: int,
        iterations: int = 8,
        damping: float = 0.3,
        eval_window: tuple[int, int] = (3, 5),
        label_strength: float = 1.0,
    ) -> None:
        super().__init__()
        if len(blocks) == 0:
            raise UsageError("a recurrent FF network needs at least one hidden layer")
        if not 0.0 <= damping < 1.0:
            raise UsageError(f"damping must be in [0, 1), got {damping}")
        first, last = eval_window
        if not 1 <= first <= last <= iterations:
            raise UsageError(
                f"eval window {eval_window} must satisfy 1 <= first <= last <= iterations = {iterations}"
            )
        self.blocks = nn.ModuleList(blocks)
        self.num_classes = num_classes
        self.iterations = iterations
        self.damping = float(damping)
        self.eval_window = (first, last)
        self.label_strength = float(label_strength)

    @classmethod
    def from_config(
        cls, model: ModelConfig, recurrent: RecurrentConfig, image_shape: tuple[int, int, int], num_classes: int
    ) -> "RecurrentFFNetwork":
        """Build the network that `[model]` and `[recurrent]` describe.

        Fully connected layers get a dense top-down matrix from the layer above. Locally
        connected layers get a locally connected top-down map with the same receptive field
        as their own, so every layer must keep the spatial size of the input. The top hidden
        layer gets a dense matrix from the label.

        Raises:
            UsageError: a bad layer setting, or locally connected layers of different sizes.
        """
        if model.kind == "local":
            up_modules, shapes = _local_bottom_up(model, image_shape)
        else:
            widths = [math.prod(image_shape), *model.hidden]
            up_modules = [_hinton_linear(widths[i], widths[i + 1], model.init) for i in range(len(model.hidden))]
            shapes = [(1, 1, w) for w in model.hidden]
        blocks = []
        for index, bottom_up in enumerate(up_modules):
            units = math.prod(shapes[index])
            if index + 1 == len(up_modules):
                top_down = _hinton_linear(num_classes, units, model.init)
            elif model.kind == "local":
                layer = model.local[index + 1]
                top_down = LocallyConnected2d(
                    shapes[index + 1], shapes[index][0], layer.kernel, 1, (layer.kernel - 1) // 2, model.init
                )
            else:
                top_down = _hinton_linear(math.prod(shapes[index + 1]), units, model.init)
            below_features = math.prod(image_shape) if index == 0 else math.prod(shapes[index - 1])
            module = TwoSourceInput(bottom_up, top_down, below_features)
            blocks.append(LocalBlock(module, units, **block_settings(model)))
        return cls(
            blocks, num_classes, recurrent.iterations, recurrent.damping,
            (recurrent.eval_first, recurrent.eval_last), model.label_strength,
        )

    @property
    def widths(self) -> list[int]:
        """Number of units of each hidden layer, bottom first."""
        return [block.units for block in self.blocks]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RMS-normalise `(batch, features)` rows."""
        return rms_normalize(x)

    def label_vectors(self, labels: torch.Tensor) -> torch.Tensor:
        """One-hot `(batch, num_classes)` top-layer states of `label_strength` for `(batch,)` labels."""
        return F.one_hot(labels, self.num_classes).float() * self.label_strength

    def neutral_vectors(self, batch: int, device: torch.device) -> torch.Tensor:
        """Top-layer states `(batch, num_classes)` of the neutral label, each entry strength / classes."""
        return torch.full((batch, self.num_classes), self.label_strength / self.num_classes, device=device)

    def layer_inputs(self, images: torch.Tensor, top: torch.Tensor, states: list[torch.Tensor]) -> list[torch.Tensor]:
        """Return each hidden layer's input `[x_below, x_above]`, built from normalised, detached states.

        Detaching here keeps every layer's loss inside that layer and that iteration.
        """
        below = [self.normalize(images)] + [self.normalize(s) for s in states[:-1]]
        above = [self.normalize(s) for s in states[1:]] + [self.normalize(top)]
        return [torch.cat([b, a], dim=1).detach() for b, a in zip(below, above)]  # (batch, below + above)

    @torch.no_grad()
    def initial_states(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Fill the hidden layers with one bottom-up pass with zero top-down input.

        Returns:
            One `(batch, units_l)` state per hidden layer.
        """
        states = []
        below = self.normalize(images)
        for block in self.blocks:
            module = block.module
            above = images.new_zeros(images.shape[0], module.top_down.in_features)
            state = torch.relu(module(torch.cat([below, above], dim=1)))
            states.append(state)
            below = self.normalize(state)
        return states

    def step(self, states: list[torch.Tensor], new: list[torch.Tensor]) -> list[torch.Tensor]:
        """Damp the computed activities `new` into the old `states` (both one tensor per layer)."""
        return [self.damping * old + (1.0 - self.damping) * h for old, h in zip(states, new)]

    @torch.no_grad()
    def run(self, images: torch.Tensor, top: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Run all iterations and average over the evaluation window.

        Args:
            images: `(batch, in_features)` bottom layer.
            top: `(batch, num_classes)` label layer.

        Returns:
            `(activities, goodness)`: one `(batch, units_l)` mean state per layer, and the
            `(batch, num_blocks)` mean goodness, both over iterations `eval_window`.
        """
        first, last = self.eval_window
        states = self.initial_states(images)
        mean_states = [torch.zeros_like(s) for s in states]
        goodness = images.new_zeros(images.shape[0], len(self.blocks))
        for t in range(1, last + 1):
            inputs = self.layer_inputs(images, top, states)
            states = self.step(states, [block(x) for block, x in zip(self.blocks, inputs)])
            if t >= first:
                for index, (block, state) in enumerate(zip(self.blocks, states)):
                    mean_states[index] += state
                    goodness[:, index] += block.goodness(state)
        count = last - first + 1
        return [s / count for s in mean_states], goodness / count

    def activities(self, images: torch.Tensor, top: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Return each layer's mean state `(batch, units_l)` over the evaluation window.

        Args:
            images: `(batch, in_features)`.
            top: `(batch, num_classes)` label layer; the neutral label when None.
        """
        if top is None:
            top = self.neutral_vectors(images.shape[0], images.device)
        return self.run(images, top)[0]

    def neutral_activities(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Return each layer's mean state `(batch, units_l)` with the neutral label on top."""
        return self.activities(images)

    @torch.no_grad()
    def goodness_per_label(self, images: torch.Tensor) -> torch.Tensor:
        """Compute every layer's goodness for every label, all labels in one batched run.

        Args:
            images: `(batch, in_features)`.

        Returns:
            `(batch, num_blocks, num_classes)` goodness averaged over the evaluation window.
        """
        batch = images.shape[0]
        repeated = images.repeat(self.num_classes, 1)  # (classes * batch, in_features), class-major
        labels = torch.arange(self.num_classes, device=images.device).repeat_interleave(batch)
        goodness = self.run(repeated, self.label_vectors(labels))[1]  # (classes * batch, blocks)
        return goodness.view(self.num_classes, batch, -1).permute(1, 2, 0)

    def train_step(
        self, images: torch.Tensor, top: torch.Tensor, batch_pos: int
    ) -> torch.Tensor:
        """Run all iterations and take one optimizer step per layer on its FF loss.

        The first `batch_pos` rows are positive data and the rest negative. Each layer's
        loss is the mean over iterations of its objective on the damped states; gradients
        are accumulated over iterations and applied once, so all iterations of a batch see
        the same weights.

        Args:
            images: `(batch, in_features)` bottom layer for positives then negatives.
            top: `(batch, num_classes)` label layer (true labels, then wrong ones).
            batch_pos: number of positive rows.

        Returns:
            `(num_blocks, 3)` detached mean loss, positive and negative goodness per layer.

        Raises:
            RuntimeError: a block has no optimizer.
        """
        stats = images.new_zeros(len(self.blocks), 3)
        for block in self.blocks:
            if block.optimizer is None:
                raise RuntimeError("call configure_optimizer() on every block before train_step()")
            block.optimizer.zero_grad(set_to_none=True)
        states = self.initial_states(images)
        for _ in range(self.iterations):
            inputs = self.layer_inputs(images, top, states)
            new_states = []
            for index, (block, x) in enumerate(zip(self.blocks, inputs)):
                z = block.module(x)
                h = torch.relu(z)
                state = self.damping * states[index] + (1.0 - self.damping) * h
                g = block.goodness(state)
                loss = block.objective(g[:batch_pos], g[batch_pos:])
                total = loss / self.iterations
                if block.peer is not None:
                    # NOTE: the running mean is updated at every iteration, so its momentum
                    # acts per iteration, not per batch as in the feed-forward network.
                    block.peer.update(h[:batch_pos].detach())
                    total = total + block.peer.loss(z[:batch_pos], _PEER_GRADIENT_SCALE) / self.iterations
                total.backward()
                new_states.append(state.detach())
                stats[index] += torch.stack(
                    [loss.detach(), g[:batch_pos].detach().mean(), g[batch_pos:].detach().mean()]
                )
            states = new_states
        for block in self.blocks:
            block.optimizer.step()
        return stats / self.iterations


def _local_bottom_up(
    model: ModelConfig, image_shape: tuple[int, int, int]
) -> tuple[list[LocallyConnected2d], list[tuple[int, int, int]]]:
    modules = local_modules(model, image_shape)
    for index, (layer, module) in enumerate(zip(model.local, modules)):
        if module.out_shape[1:] != tuple(image_shape)[1:] or layer.kernel % 2 == 0:
            raise UsageError(
                f"model.local[{index}] gives {module.out_shape[1]} x {module.out_shape[2]} maps, but the "
                f"recurrent network needs every layer at the input size {image_shape[1]} x {image_shape[2]} "
                "with an odd kernel, so top-down maps line up; use stride 1 and padding (kernel - 1) / 2"
            )
    return modules, [module.out_shape for module in modules]


class RecurrentTrainer(Trainer):
    """The FF trainer for `RecurrentFFNetwork`: same epochs, metrics, checkpoints and resume.

    Raises:
        UsageError: the greedy schedule or unsupervised negatives, which this network does
            not support.
    """

    def __init__(self, config: RunConfig, data, device: torch.device) -> None:
        if config.train.schedule != "simultaneous":
            raise UsageError('the recurrent network trains all layers together; set train.schedule = "simultaneous"')
        if config.negatives.kind == "hybrid":
            raise UsageError('the recurrent network is supervised; choose negatives.kind = "hard" or "random"')
        super().__init__(config, data, device)

    def build_network(self) -> RecurrentFFNetwork:
        """Create the recurrent network of `config.model` and `config.recurrent`."""
        return RecurrentFFNetwork.from_config(
            self.config.model, self.config.recurrent, self.data.shape, self.data.num_classes
        )

    def train_batch(self, images: torch.Tensor, labels: torch.Tensor, active: int | None) -> torch.Tensor:
        """Update every layer and the read-out on one minibatch; values as `Trainer.train_batch`."""
        readout_stats = torch.zeros(2, device=self.device)
        if self.config.data.jitter:
            images = jitter_images(images, self.data.shape, self.config.data.jitter, self.jitter_generator)

        logits = self.train_readout(images, labels, readout_stats)
        with torch.no_grad():
            negative_labels = self._negative_labels(images, labels, logits)
        top = self.network.label_vectors(torch.cat([labels, negative_labels]))
        stats = self.network.train_step(torch.cat([images, images]), top, images.shape[0])
        return torch.cat([stats.flatten(), readout_stats])
