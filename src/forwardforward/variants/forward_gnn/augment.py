"""Graph augmentations that carry labels into a GNN: virtual class nodes and appended labels.

Real nodes keep their indices `0 .. num_nodes - 1`; the virtual node of class c gets index
`num_nodes + c`. A label assignment is an int64 tensor `(num_nodes,)` whose entry is the class
a node is linked to (or whose one-hot it carries), or -1 for none.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

NO_LABEL = -1


@dataclass(frozen=True)
class VirtualNodes:
    """Frozen random features of one virtual node per class.

    Attributes:
        features: `(num_classes, num_features)` drawn once from N(0, 1) and never trained.
        num_nodes: number of real nodes; virtual node c has index `num_nodes + c`.
    """

    features: torch.Tensor
    num_nodes: int

    @property
    def num_classes(self) -> int:
        """Number of classes, which is the number of virtual nodes."""
        return self.features.shape[0]

    def node_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stack real and virtual features: `(num_nodes, F)` -> `(num_nodes + num_classes, F)`."""
        return torch.cat([x, self.features.to(x.dtype)])

    def links(self, assignment: torch.Tensor, direction: str = "both") -> torch.Tensor:
        """Edges `(2, num_links)` between each assigned real node and its class's virtual node.

        Args:
            assignment: `(num_nodes,)` class per real node, -1 for nodes that get no link.
            direction: `both` adds node -> virtual and virtual -> node; `to_virtual` only the first
                and `from_virtual` only the second (PyG edges run from `edge_index[0]`, the
                source, to `edge_index[1]`, the target).

        Raises:
            ValueError: `assignment` has the wrong length or a class outside `[-1, num_classes)`.
        """
        if assignment.shape != (self.num_nodes,):
            raise ValueError(f"assignment must have shape ({self.num_nodes},), got {tuple(assignment.shape)}")
        if assignment.numel() and (assignment.min() < NO_LABEL or assignment.max() >= self.num_classes):
            raise ValueError(f"assignment entries must be in [-1, {self.num_classes}), got "
                             f"[{assignment.min().item()}, {assignment.max().item()}]")
        nodes = torch.nonzero(assignment >= 0).flatten()
        virtual = self.num_nodes + assignment[nodes]
        to_virtual = torch.stack([nodes, virtual])  # (2, linked nodes)
        if direction == "to_virtual":
            return to_virtual
        if direction == "from_virtual":
            return to_virtual.flip(0)
        return torch.cat([to_virtual, to_virtual.flip(0)], dim=1)  # (2, 2 * linked nodes)

    def augment(self, x: torch.Tensor, edge_index: torch.Tensor, assignment: torch.Tensor,
                direction: str = "both") -> tuple[torch.Tensor, torch.Tensor]:
        """Return `(x_aug, edge_index_aug)`: features with virtual rows and edges with the links."""
        edges = torch.cat([edge_index, self.links(assignment, direction).to(edge_index.device)], dim=1)
        return self.node_features(x), edges


def make_virtual_nodes(num_classes: int, num_features: int, num_nodes: int, seed: int) -> VirtualNodes:
    """Draw the frozen random features of the virtual nodes from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(num_classes, num_features, generator=generator)
    return VirtualNodes(features=features, num_nodes=num_nodes)


def training_assignment(labels: torch.Tensor, train_mask: torch.Tensor) -> torch.Tensor:
    """Assignment `(num_nodes,)` that links the training nodes to their true class and no other node."""
    return torch.where(train_mask, labels, torch.full_like(labels, NO_LABEL))


def append_labels(x: torch.Tensor, assignment: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Append a label vector to every node's features: `(num_nodes, F)` -> `(num_nodes, F + num_classes)`.

    Assigned nodes get the one-hot of their class; nodes with -1 get the uniform vector 1 / num_classes,
    which favours no class.
    """
    one_hot = torch.full((x.shape[0], num_classes), 1.0 / num_classes, dtype=x.dtype, device=x.device)
    assigned = assignment >= 0
    one_hot[assigned] = torch.nn.functional.one_hot(assignment[assigned], num_classes).to(x.dtype)
    return torch.cat([x, one_hot], dim=1)
