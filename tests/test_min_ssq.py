"""The "min ssq" goodness: low sums of squares for positive data, through the threshold objective."""

import torch
import torch.nn.functional as F

from forwardforward.goodness import default_threshold, negative_sum_of_squares
from forwardforward.layers import FFLinear
from forwardforward.objectives import threshold_loss


def test_value_is_minus_sum_of_squares():
    h = torch.tensor([[1.0, 2.0, 0.0], [0.5, 0.0, 0.5]])

    assert torch.equal(negative_sum_of_squares(h), torch.tensor([-5.0, -0.5]))


def test_threshold_loss_rewards_low_positive_ssq():
    units = 4
    ssq_pos, ssq_neg = torch.tensor([1.0, 6.0]), torch.tensor([3.0, 9.0])
    theta = default_threshold("negative_sum_of_squares", units)

    loss = threshold_loss(-ssq_pos, -ssq_neg, theta)

    expected = F.softplus(ssq_pos - units).mean() + F.softplus(units - ssq_neg).mean()
    assert theta == -4.0
    assert torch.allclose(loss, expected)


def test_block_step_lowers_positive_ssq():
    torch.manual_seed(0)
    block = FFLinear(10, 8, goodness="negative_sum_of_squares")
    from forwardforward.optim import OptimizerConfig

    block.configure_optimizer(OptimizerConfig(lr=0.05, weight_decay=0.0))
    x_pos, x_neg = torch.rand(32, 10) * 3, torch.rand(32, 10) * 3
    before = block(x_pos).square().sum(1).mean()
    for _ in range(20):
        block.train_step(x_pos, x_neg)

    assert block(x_pos).square().sum(1).mean() < before
