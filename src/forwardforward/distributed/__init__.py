"""Layer-pipeline and data-parallel training over torch.distributed (gloo on CPU, NCCL on CUDA).

Launch with torchrun, for example
`torchrun --nproc-per-node 2 -m forwardforward train --recipe mnist-quick --parallel pipeline`.
"""

from .comm import Communicator, DistributedError, launch_environment
from .efficiency import PipelineEstimate, estimate_pipeline
from .layout import PARALLEL_MODES, ParallelLayout, make_layout, partition_blocks
from .run import DEFAULT_TIMEOUT_S, train_distributed
from .stage import PipelineStage

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "PARALLEL_MODES",
    "Communicator",
    "DistributedError",
    "ParallelLayout",
    "PipelineEstimate",
    "PipelineStage",
    "estimate_pipeline",
    "launch_environment",
    "make_layout",
    "partition_blocks",
    "train_distributed",
]
