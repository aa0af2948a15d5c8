"""Forward learning of graph neural networks (Park et al., ICLR 2024) on PyTorch Geometric.

Node classification: FF with label appending or virtual label nodes, single-forward learning
and its two top-down variants. Link prediction: a dot-product or FF score per layer, greedy or
with the layers above feeding the loss. Backprop baselines live in
`forwardforward.baselines.gnn_backprop`. Needs the `graph` extra.
"""

from .augment import VirtualNodes, append_labels, make_virtual_nodes, training_assignment
from .experiment import LINK_METHODS, NODE_METHODS, link_task, node_task, run_link_method, run_node_method
from .fitting import DepthResult, FitResult, fit_joint, fit_layerwise
from .goodness_nodes import GoodnessNodeClassifier
from .layers import GraphConfig, GraphLayer, make_convolution
from .link import LinkForward, LinkTopToLoss
from .memory import PeakMemoryMeter
from .metrics import masked_accuracy, roc_auc
from .single_forward import SingleForward, TopToInput, TopToLoss
from .tasks import LinkSet, LinkTask, NodeTask, sample_negative_edges

__all__ = [
    "LINK_METHODS",
    "NODE_METHODS",
    "DepthResult",
    "FitResult",
    "GoodnessNodeClassifier",
    "GraphConfig",
    "GraphLayer",
    "LinkForward",
    "LinkSet",
    "LinkTask",
    "LinkTopToLoss",
    "NodeTask",
    "PeakMemoryMeter",
    "SingleForward",
    "TopToInput",
    "TopToLoss",
    "VirtualNodes",
    "append_labels",
    "fit_joint",
    "fit_layerwise",
    "link_task",
    "make_convolution",
    "make_virtual_nodes",
    "masked_accuracy",
    "node_task",
    "roc_auc",
    "run_link_method",
    "run_node_method",
    "sample_negative_edges",
    "training_assignment",
]
