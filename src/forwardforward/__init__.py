"""forwardforward: layer-local, backprop-free training with Hinton's Forward-Forward algorithm."""

__version__ = "0.1.0"

from .config import RunConfig, load_config
from .errors import DataError, ForwardForwardError, TrainingError, UsageError
from .goodness import mean_of_squares, negative_sum_of_squares, sum_of_squares
from .labels import (
    ChannelLabels,
    LabelEmbedding,
    NoiseLabels,
    PixelLabels,
    overlay_every_label,
    overlay_labels,
    overlay_neutral,
)
from .layers import FFLinear, FFLocal, LocalBlock, LocallyConnected2d
from .negatives import hard_wrong_labels, hybrid_images, hybrid_mask, random_wrong_labels
from .network import FFNetwork
from .normalization import PeerNormalization, rms_normalize
from .objectives import cosine_contrastive_loss, symba_loss, threshold_loss
from .optim import OptimizerConfig, SmoothedSGD
from .readout import LinearReadout, predict_by_goodness

__all__ = [
    "ChannelLabels",
    "DataError",
    "FFLinear",
    "FFLocal",
    "FFNetwork",
    "ForwardForwardError",
    "LabelEmbedding",
    "LinearReadout",
    "LocalBlock",
    "LocallyConnected2d",
    "NoiseLabels",
    "OptimizerConfig",
    "PeerNormalization",
    "PixelLabels",
    "RunConfig",
    "SmoothedSGD",
    "TrainingError",
    "UsageError",
    "__version__",
    "cosine_contrastive_loss",
    "hard_wrong_labels",
    "hybrid_images",
    "hybrid_mask",
    "load_config",
    "mean_of_squares",
    "negative_sum_of_squares",
    "overlay_every_label",
    "overlay_labels",
    "overlay_neutral",
    "predict_by_goodness",
    "random_wrong_labels",
    "rms_normalize",
    "sum_of_squares",
    "symba_loss",
    "threshold_loss",
]
