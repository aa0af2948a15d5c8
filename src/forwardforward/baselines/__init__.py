"""Backprop baselines: the architectures of the FF recipes and variants, trained end to end.

`backprop` serves the core recipes (`trainer = "backprop"`); `end_to_end` trains any stack of
modules with cross-entropy and serves the VFF-Net recipes.
"""

from .backprop import BackpropNetwork, BackpropTrainer
from .end_to_end import BackpropClassifier

__all__ = ["BackpropClassifier", "BackpropNetwork", "BackpropTrainer"]
