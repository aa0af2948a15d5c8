import pytest
import torch

from forwardforward.errors import UsageError
from forwardforward.goodness import GOODNESS, default_threshold, get_goodness, mean_of_squares, sum_of_squares


def test_sum_of_squares_hand_values():
    h = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.5]])
    assert torch.equal(sum_of_squares(h), torch.tensor([14.0, 0.25]))


def test_mean_of_squares_hand_values():
    h = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.6]])
    assert torch.allclose(mean_of_squares(h), torch.tensor([14.0 / 3, 0.12]))


@pytest.mark.parametrize("name", sorted(GOODNESS))
def test_goodness_is_per_sample(name):
    fn = get_goodness(name)
    h = torch.rand(7, 5)
    batched = fn(h)
    assert batched.shape == (7,)
    for i in range(7):
        assert torch.allclose(batched[i], fn(h[i : i + 1])[0])


def test_default_thresholds():
    assert default_threshold("sum_of_squares", 1000) == 1000.0
    assert default_threshold("mean_of_squares", 1000) == 2.0


def test_unknown_goodness_names_choices():
    with pytest.raises(UsageError, match="sum_of_squares"):
        get_goodness("l1")
