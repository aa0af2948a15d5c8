"""Data parallelism inside a stage: replicas that together take the step of one large batch.

Each replica computes the batch-mean loss of its share of the global batch. Scaling its gradient
by `local_batch / global_batch` and summing over replicas gives the gradient of the global
batch's mean loss, even when the shares differ in size (the last batch of an epoch). The running
means of peer normalisation are combined the same way, so every replica keeps the same buffers
and weights as a single process that trains on the whole global batch.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from ..normalization import PeerNormalization
from .comm import Communicator


class ReplicaSync:
    """All-reduces gradients of the given modules over a stage's replicas as backward produces them.

    Args:
        modules: the modules whose parameters the replicas share.
        comm: the job's communicator.
        group: the process group of the stage's replicas.

    Attributes:
        share: this replica's fraction of the current global batch; set it before each batch.
    """

    def __init__(self, modules: Iterable[nn.Module], comm: Communicator, group: Any) -> None:
        self.comm = comm
        self.group = group
        self.share = 1.0
        for module in modules:
            for parameter in module.parameters():
                if parameter.requires_grad:
                    parameter.register_post_accumulate_grad_hook(self._reduce_gradient)

    def _reduce_gradient(self, parameter: torch.Tensor) -> None:
        # Every replica runs the same backward graph, so the hooks fire, and the all-reduces
        # start, in the same order on all of them.
        parameter.grad.mul_(self.share)
        self.comm.all_reduce(parameter.grad, self.group)

    def replicate_peer_normalization(self, blocks: Iterable[nn.Module]) -> None:
        """Replace each block's peer normalisation by one whose running mean is global."""
        for block in blocks:
            peer = getattr(block, "peer", None)
            if peer is not None and not isinstance(peer, ReplicatedPeerNormalization):
                block.peer = ReplicatedPeerNormalization(peer, self)


class ReplicatedPeerNormalization(PeerNormalization):
    """Peer normalisation whose running mean folds in the mean over the global batch.

    Args:
        peer: the block's own peer normalisation, whose settings and buffer are copied.
        sync: the stage's `ReplicaSync`, which provides the group and this replica's share.
    """

    def __init__(self, peer: PeerNormalization, sync: ReplicaSync) -> None:
        super().__init__(peer.running_mean.numel(), peer.strength, peer.momentum)
        self.running_mean.copy_(peer.running_mean)
        self.to(peer.running_mean.device)
        self.sync = sync

    @torch.no_grad()
    def update(self, activity: torch.Tensor) -> None:
        """Fold the global batch's mean of `(batch, num_units)` local positive activities in."""
        weighted_mean = activity.mean(dim=0).to(self.running_mean.dtype) * self.sync.share
        global_mean = self.sync.comm.all_reduce(weighted_mean, self.sync.group)
        self.running_mean.mul_(self.momentum).add_(global_mean, alpha=1.0 - self.momentum)
