"""Backprop baselines: the same architectures as the FF recipes, trained end to end."""

from .backprop import BackpropClassifier, BackpropTrainer

__all__ = ["BackpropClassifier", "BackpropTrainer"]
