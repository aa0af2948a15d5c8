"""Run one method on one Planetoid graph and seed: the entry point of the CLI and the benchmark."""

from __future__ import annotations

from ...data.planetoid import random_link_split, random_node_split
from ...errors import UsageError
from .fitting import EpochCallback, FitResult, fit_joint, fit_layerwise
from .goodness_nodes import GoodnessNodeClassifier
from .layers import GraphConfig
from .link import LinkForward, LinkTopToLoss
from .single_forward import SingleForward, TopToInput, TopToLoss
from .tasks import LinkSet, LinkTask, NodeTask

# Method name -> whether it trains greedily (one run gives every depth up to its number of layers).
NODE_METHODS = {
    "ff-label-appending": True,
    "ff-virtual-nodes": True,
    "single-forward": True,
    "sf-top-to-loss": False,
    "sf-top-to-input": False,
    "backprop": False,
}
LINK_METHODS = {
    "dot-product": True,
    "ff": True,
    "top-to-loss": False,
    "backprop": False,
}


def node_task(data, seed: int) -> NodeTask:
    """Make a node-classification task from a PyG graph with a random 64/16/20 node split."""
    return NodeTask(x=data.x, edge_index=data.edge_index, labels=data.y,
                    split=random_node_split(data.num_nodes, seed), num_classes=int(data.y.max()) + 1)


def link_task(data, seed: int) -> LinkTask:
    """Make a link-prediction task from a PyG graph with a random 85/5/10 edge split."""
    train, valid, test = random_link_split(data, seed)
    positive = train.edge_label == 1
    return LinkTask(
        x=data.x,
        train=LinkSet(train.edge_index, train.edge_label_index[:, positive], train.edge_label[positive]),
        valid=LinkSet(valid.edge_index, valid.edge_label_index, valid.edge_label),
        test=LinkSet(test.edge_index, test.edge_label_index, test.edge_label),
    )


def _check(method: str, methods: dict[str, bool], task: str, num_layers: int) -> None:
    if method not in methods:
        raise UsageError(f"unknown {task} method {method!r}; choose one of {', '.join(methods)}")
    if num_layers < 1:
        raise UsageError(f"num_layers must be at least 1, got {num_layers}")


def run_node_method(method: str, task: NodeTask, config: GraphConfig, num_layers: int, seed: int,
                    progress: bool = False, on_epoch: EpochCallback | None = None) -> FitResult:
    """Train one node-classification method and return accuracy per depth.

    Greedy methods return depths 1 to `num_layers` from one run; the others only `num_layers`.

    Raises:
        UsageError: an unknown method or a bad setting.
        TrainingError: a loss became NaN or infinite.
    """
    from ...baselines.gnn_backprop import BackpropNodeClassifier

    _check(method, NODE_METHODS, "node", num_layers)
    if method == "single-forward":
        return fit_layerwise(SingleForward(task, config, seed), num_layers, config, progress, on_epoch)
    if method in ("ff-label-appending", "ff-virtual-nodes"):
        encoding = method.removeprefix("ff-")
        return fit_layerwise(GoodnessNodeClassifier(task, config, encoding, seed), num_layers, config,
                             progress, on_epoch)
    joint = {"sf-top-to-loss": TopToLoss, "sf-top-to-input": TopToInput, "backprop": BackpropNodeClassifier}
    return fit_joint(joint[method](task, config, num_layers, seed), num_layers, config, progress, on_epoch)


def run_link_method(method: str, task: LinkTask, config: GraphConfig, num_layers: int, seed: int,
                    progress: bool = False, on_epoch: EpochCallback | None = None) -> FitResult:
    """Train one link-prediction method and return ROC-AUC in percent per depth.

    Raises:
        UsageError: an unknown method or a bad setting.
        TrainingError: a loss became NaN or infinite.
    """
    from ...baselines.gnn_backprop import BackpropLinkPredictor

    _check(method, LINK_METHODS, "link", num_layers)
    if method in ("dot-product", "ff"):
        return fit_layerwise(LinkForward(task, config, method, seed), num_layers, config, progress, on_epoch)
    joint = {"top-to-loss": LinkTopToLoss, "backprop": BackpropLinkPredictor}
    return fit_joint(joint[method](task, config, num_layers, seed), num_layers, config, progress, on_epoch)
