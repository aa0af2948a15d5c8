"""Early stopping on a validation score that keeps, and can restore, the best weights."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EarlyStopping:
    """Track a validation score (higher is better) and the module state at its best value.

    Args:
        patience: evaluations without improvement after which `step` returns True; must be >= 1.
        min_delta: an improvement must exceed the best score by more than this.

    Raises:
        ValueError: `patience` is below 1 or `min_delta` is negative.
    """

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1 evaluation, got {patience}")
        if min_delta < 0:
            raise ValueError(f"min_delta must be non-negative, got {min_delta}")
        self.patience = patience
        self.min_delta = min_delta
        self.best_score: float | None = None
        self.best_step: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_evaluations = 0

    def step(self, score: float, module: nn.Module, step: int) -> bool:
        """Record the score of `module` at training step `step`; return True when training should stop.

        A new best score stores a copy of `module.state_dict()`. The first score is always a new best.
        """
        if self.best_score is None or score > self.best_score + self.min_delta:
            self.best_score = float(score)
            self.best_step = step
            self.best_state = copy.deepcopy(module.state_dict())
            self.bad_evaluations = 0
            return False
        self.bad_evaluations += 1
        return self.bad_evaluations >= self.patience

    def restore(self, module: nn.Module) -> None:
        """Load the best state into `module`; without any recorded score this does nothing."""
        if self.best_state is not None:
            module.load_state_dict(self.best_state)
