"""Helpers shared by tests that interrupt training runs (importable because tests/ is on sys.path)."""

import pytest

from forwardforward.errors import RunInterrupted
from forwardforward.training import Trainer, train


def train_until_interrupted(monkeypatch, completed_epochs, *args, **kwargs):
    """Call `train(*args, **kwargs)` and stop it with Ctrl-C after `completed_epochs` epochs.

    The KeyboardInterrupt comes at the start of the next epoch, so the checkpoint and the
    per-epoch files end at `completed_epochs`.
    """
    original_train_epoch = Trainer.train_epoch

    def interrupted_train_epoch(self, progress=True):
        if self.epoch == completed_epochs:
            raise KeyboardInterrupt
        return original_train_epoch(self, progress)

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "train_epoch", interrupted_train_epoch)
        with pytest.raises(RunInterrupted):
            train(*args, **kwargs)
