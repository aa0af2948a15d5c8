"""Backprop baselines: the FF recipes' architectures trained end to end with cross-entropy."""

from .backprop import BackpropNetwork, BackpropTrainer

__all__ = ["BackpropNetwork", "BackpropTrainer"]
