"""Self-Contrastive FF parts: pairs, the shared-weight first layer, goodness, loss, locality."""

import pytest
import torch
import torch.nn.functional as F

from forwardforward.goodness import channel_mean_of_squares
from forwardforward.negatives import self_contrastive_pairs
from forwardforward.normalization import standardize
from forwardforward.objectives import split_threshold_loss
from forwardforward.variants.scff import (
    PaddedConv2d,
    SCFFBlock,
    SCFFNetwork,
    SharedPairLinear,
    triangle,
)


def test_pairs_shapes_and_positive_halves():
    x = torch.arange(5 * 3, dtype=torch.float32).view(5, 3)
    x_pos, x_neg = self_contrastive_pairs(x, num_negatives=2, generator=torch.Generator().manual_seed(0))
    assert x_pos.shape == (5, 6)
    assert x_neg.shape == (10, 6)
    assert torch.equal(x_pos[:, :3], x)
    assert torch.equal(x_pos[:, 3:], x)


@pytest.mark.parametrize("seed", range(5))
def test_negative_pairs_never_pair_a_sample_with_itself(seed):
    batch = 7
    x = torch.arange(batch, dtype=torch.float32)[:, None].repeat(1, 4)  # row i is all i
    _, x_neg = self_contrastive_pairs(x, num_negatives=batch - 1, generator=torch.Generator().manual_seed(seed))
    first, second = x_neg[:, 0], x_neg[:, 4]
    assert not torch.any(first == second)
    # Every sample meets every other sample exactly once when all shifts are used.
    for i in range(batch):
        partners = sorted(second[first == i].tolist())
        assert partners == [j for j in range(batch) if j != i]


def test_negative_pairs_use_distinct_shifts():
    x = torch.arange(10, dtype=torch.float32)[:, None]
    _, x_neg = self_contrastive_pairs(x, num_negatives=3, generator=torch.Generator().manual_seed(1))
    shifts = {int((x_neg[k * 10, 1] - x_neg[k * 10, 0]).item()) % 10 for k in range(3)}
    assert len(shifts) == 3
    assert 0 not in shifts


def test_pairs_of_conv_inputs_concatenate_channels():
    x1, x2 = torch.rand(4, 3, 5, 5), torch.rand(4, 3, 5, 5)
    x_pos, x_neg = self_contrastive_pairs(x1, x2, generator=torch.Generator().manual_seed(0))
    assert x_pos.shape == (4, 6, 5, 5)
    assert x_neg.shape == (4, 6, 5, 5)
    assert torch.equal(x_pos[:, 3:], x2)
    assert torch.equal(x_neg[:, :3], x1)


@pytest.mark.parametrize("batch, k", [(1, 1), (4, 0), (4, 4)])
def test_pairs_reject_bad_counts(batch, k):
    with pytest.raises(ValueError, match="batch|num_negatives"):
        self_contrastive_pairs(torch.rand(batch, 3), num_negatives=k)


def test_pairs_reject_mismatched_views():
    with pytest.raises(ValueError, match="same shape"):
        self_contrastive_pairs(torch.rand(4, 3), torch.rand(4, 2))


def test_shared_pair_linear_equals_w_of_sum_plus_two_b():
    torch.manual_seed(0)
    layer = SharedPairLinear(6, 4).double()
    x1, x2 = torch.rand(3, 6, dtype=torch.float64), torch.rand(3, 6, dtype=torch.float64)
    out = layer(torch.cat([x1, x2], dim=1))
    w, b = layer.linear.weight, layer.linear.bias
    assert torch.allclose(out, (x1 + x2) @ w.T + 2 * b)
    assert torch.allclose(out, layer.linear(x1) + layer.linear(x2))


def test_shared_pair_linear_rejects_wrong_width():
    with pytest.raises(ValueError, match="pairs of 2 x 6"):
        SharedPairLinear(6, 4)(torch.rand(3, 6))


def test_shared_pair_conv_equals_sum_of_two_convolutions():
    torch.manual_seed(0)
    layer = PaddedConv2d(3, 5, 3, padding=1, shared_pair=True).double()
    x1, x2 = torch.rand(2, 3, 6, 6, dtype=torch.float64), torch.rand(2, 3, 6, 6, dtype=torch.float64)
    out = layer(torch.cat([x1, x2], dim=1))
    single = lambda x: layer.conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))  # noqa: E731
    assert out.shape == (2, 5, 6, 6)
    assert torch.allclose(out, single(x1) + single(x2))


def test_goodness_is_channel_mean_per_location():
    h = torch.zeros(2, 4, 3, 3)
    h[0, :, 1, 2] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    g = channel_mean_of_squares(h)
    assert g.shape == (2, 3, 3)
    assert g[0, 1, 2].item() == pytest.approx((1 + 4 + 9 + 16) / 4)
    assert g.sum().item() == pytest.approx(7.5)


def test_split_threshold_loss_hand_computed():
    g_pos = torch.tensor([2.0, 4.0])
    g_neg = torch.tensor([1.0, 3.0, 0.0])
    loss = split_threshold_loss(g_pos, g_neg, threshold_pos=3.0, threshold_neg=2.0, penalty=0.1)
    softplus = lambda v: torch.log1p(torch.exp(torch.tensor(v))).item()  # noqa: E731
    expected = (softplus(1.0) + softplus(-1.0)) / 2 + (softplus(-1.0) + softplus(1.0) + softplus(-2.0)) / 3 + 0.1 * 3.0
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_split_threshold_loss_rejects_negative_penalty():
    with pytest.raises(ValueError, match="penalty"):
        split_threshold_loss(torch.ones(2), torch.ones(2), 1.0, 1.0, penalty=-0.1)


def test_triangle_subtracts_channel_mean():
    z = torch.tensor([[1.0, 2.0, 6.0]])
    assert torch.equal(triangle(z), torch.tensor([[0.0, 0.0, 3.0]]))


def test_standardize_per_sample():
    x = torch.rand(4, 3, 5, 5) * 7 + 2
    s = standardize(x)
    assert torch.allclose(s.mean(dim=(1, 2, 3)), torch.zeros(4), atol=1e-5)
    assert torch.allclose(s.std(dim=(1, 2, 3)), torch.ones(4), atol=1e-5)


def _two_blocks():
    torch.manual_seed(0)
    first = SCFFBlock(SharedPairLinear(8, 6), 6, "triangle", 1.0, 1.0, 0.01)
    second = SCFFBlock(torch.nn.Linear(6, 5), 5, "relu", 1.0, 1.0, 0.01)
    return SCFFNetwork([first, second])


def test_second_block_loss_leaves_first_block_untouched():
    network = _two_blocks()
    x_pos, x_neg = self_contrastive_pairs(torch.rand(6, 8), generator=torch.Generator().manual_seed(0))
    h_pos, h_neg = network.blocks[0](x_pos), network.blocks[0](x_neg)  # with a graph to block 0
    loss, _, _, _ = network.blocks[1].local_loss(h_pos, h_neg)
    loss.backward()
    assert all(p.grad is None for p in network.blocks[0].parameters())
    assert all(p.grad is not None for p in network.blocks[1].parameters())


def test_block_training_separates_positive_and_negative_goodness():
    network = _two_blocks()
    block = network.blocks[0]
    block.configure_optimizer(__import__("forwardforward").OptimizerConfig(name="adamw", lr=0.01, weight_decay=0.0))
    torch.manual_seed(1)
    prototypes = torch.randn(4, 8)
    x = prototypes.repeat(8, 1) + 0.05 * torch.randn(32, 8)
    generator = torch.Generator().manual_seed(0)
    for _ in range(150):
        x_pos, x_neg = self_contrastive_pairs(x, generator=generator)
        _, _, metrics = block.train_step(x_pos, x_neg)
    assert metrics["goodness_pos"] > 2 * metrics["goodness_neg"]


def test_conv_block_scores_every_location():
    torch.manual_seed(0)
    block = SCFFBlock(PaddedConv2d(2, 4, 3, 1, shared_pair=True), 4, pool=torch.nn.MaxPool2d(2))
    x_pos, x_neg = self_contrastive_pairs(torch.rand(3, 2, 6, 6), generator=torch.Generator().manual_seed(0))
    loss, out_pos, out_neg, metrics = block.local_loss(x_pos, x_neg)
    assert out_pos.shape == (3, 4, 3, 3)
    assert out_neg.shape == (3, 4, 3, 3)
    z = block.pre_activation(torch.cat([x_pos, x_neg]))
    g = channel_mean_of_squares(torch.relu(z))
    expected = split_threshold_loss(g[:3], g[3:], 1.0, 1.0, 0.0)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
