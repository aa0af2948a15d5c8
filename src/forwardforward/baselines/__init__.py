"""The architectures of the FF recipes and variants, trained end to end with backprop."""

from .backprop import BackpropClassifier, BackpropTrainer

__all__ = ["BackpropClassifier", "BackpropTrainer"]
