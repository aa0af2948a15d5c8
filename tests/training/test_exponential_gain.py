"""The step-wise exponential learning-rate gain used per layer by Self-Contrastive FF."""

import pytest

from forwardforward.errors import UsageError
from forwardforward.training.schedules import exponential_gain


def test_gain_steps_down_every_interval():
    assert exponential_gain(0, 0.5, 10) == 1.0
    assert exponential_gain(9, 0.5, 10) == 1.0
    assert exponential_gain(10, 0.5, 10) == 0.5
    assert exponential_gain(35, 0.5, 10) == 0.125


def test_decay_of_one_is_constant():
    assert exponential_gain(1000, 1.0, 3) == 1.0


@pytest.mark.parametrize("step, decay, every", [(-1, 0.5, 1), (0, 0.0, 1), (0, 1.5, 1), (0, 0.5, 0)])
def test_bad_arguments(step, decay, every):
    with pytest.raises(UsageError):
        exponential_gain(step, decay, every)
