"""Move weights between the PyTorch modules and the JAX model.

A PyTorch `nn.Linear` stores `weight` as `(out_features, in_features)`; a Flax `Dense` kernel
is its transpose, `(in_features, out_features)`. Biases are the same vectors.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import torch

from ..errors import UsageError
from ..network import FFNetwork as TorchFFNetwork
from ..readout import LinearReadout as TorchLinearReadout
from .model import FFModel, FFState


def _dense_from_linear(linear: torch.nn.Linear) -> dict:
    out = {"kernel": jnp.asarray(linear.weight.detach().cpu().numpy().T)}
    if linear.bias is not None:
        out["bias"] = jnp.asarray(linear.bias.detach().cpu().numpy())
    return out


def state_from_torch(
    model: FFModel, network: TorchFFNetwork, readout: TorchLinearReadout | None = None
) -> FFState:
    """Build a JAX state with the weights and peer means of PyTorch modules and fresh optimizers.

    Args:
        model: the JAX model whose settings match the PyTorch network.
        network: the PyTorch FF network (its blocks must be `FFLinear`).
        readout: the PyTorch read-out; required when the model has one.

    Returns:
        An `FFState` whose optimizer states are freshly initialised.

    Raises:
        UsageError: widths, block count or read-out presence differ.
    """
    spec = model.spec
    if tuple(network.widths) != spec.hidden:
        raise UsageError(f"the PyTorch network has widths {network.widths}, the JAX model {list(spec.hidden)}")
    if (readout is None) != (model.readout is None):
        raise UsageError("pass the PyTorch read-out exactly when the JAX model has one")
    blocks = {f"block{i}": {"Dense_0": _dense_from_linear(block.module)} for i, block in enumerate(network.blocks)}
    params = {"params": blocks}
    readout_params = None
    if readout is not None:
        readout_params = {"params": {"Dense_0": _dense_from_linear(readout.linear)}}
    peer_means = tuple(
        jnp.asarray(block.peer.running_mean.cpu().numpy()) if block.peer is not None
        else jnp.full((block.units,), 0.5, jnp.float32)
        for block in network.blocks
    )
    block_opt_states = tuple(
        tx.init(params["params"][f"block{i}"]) for i, tx in enumerate(model.block_tx)
    )
    readout_opt_state = model.readout_tx.init(readout_params) if readout is not None else None
    return FFState(params, readout_params, block_opt_states, readout_opt_state, peer_means)


def weights_as_numpy(state: FFState) -> dict[str, np.ndarray]:
    """Return the weights in PyTorch's layout, keyed like `FFNetwork.state_dict()`.

    Keys are `blocks.{i}.module.weight`, `blocks.{i}.module.bias`, `readout.linear.weight` and
    `readout.linear.bias` (when present); weights are `(out_features, in_features)`.
    """
    out = {}
    for name, block in state.params["params"].items():
        index = int(name[len("block"):])
        out[f"blocks.{index}.module.weight"] = np.asarray(block["Dense_0"]["kernel"]).T
        out[f"blocks.{index}.module.bias"] = np.asarray(block["Dense_0"]["bias"])
    if state.readout_params is not None:
        dense = state.readout_params["params"]["Dense_0"]
        out["readout.linear.weight"] = np.asarray(dense["kernel"]).T
        if "bias" in dense:
            out["readout.linear.bias"] = np.asarray(dense["bias"])
    return out
