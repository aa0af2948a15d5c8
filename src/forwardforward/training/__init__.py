"""Training schedules, evaluation, checkpoints and run directories."""

from .checkpoint import CheckpointParts, ResumableTrainer, load_checkpoint, save_checkpoint
from .evaluation import evaluate_split
from .metrics import MetricsLog
from .run import RunResult, evaluate_run, format_epoch, train
from .schedules import hinton_gain, lr_gain
from .trainer import Trainer, TrainingData, resolve_device

__all__ = [
    "CheckpointParts",
    "MetricsLog",
    "ResumableTrainer",
    "RunResult",
    "Trainer",
    "TrainingData",
    "evaluate_run",
    "evaluate_split",
    "format_epoch",
    "hinton_gain",
    "load_checkpoint",
    "lr_gain",
    "resolve_device",
    "save_checkpoint",
    "train",
]
