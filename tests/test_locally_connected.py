"""The locally connected layer against a naive per-location reference, and its FF block."""

import pytest
import torch
import torch.nn.functional as F

from forwardforward.errors import UsageError
from forwardforward.layers import FFLocal, LocallyConnected2d


def naive_locally_connected(layer, x):
    """Reference written with loops over output locations: one matrix product per location."""
    channels, height, width = layer.in_shape
    out_channels, out_height, out_width = layer.out_shape
    p, k, s = layer.padding, layer.kernel, layer.stride
    maps = F.pad(x.view(-1, channels, height, width), (p, p, p, p))
    out = torch.zeros(x.shape[0], out_channels, out_height, out_width, dtype=x.dtype)
    for i in range(out_height):
        for j in range(out_width):
            patch = maps[:, :, i * s : i * s + k, j * s : j * s + k].reshape(x.shape[0], -1)
            location = i * out_width + j
            out[:, :, i, j] = patch @ layer.weight[location] + layer.bias[location]
    return out.reshape(x.shape[0], -1)


@pytest.mark.parametrize(
    ("in_shape", "channels", "kernel", "stride", "padding"),
    [((1, 28, 28), 4, 10, 6, 0), ((3, 9, 7), 2, 3, 1, 1), ((5, 4, 4), 3, 2, 1, 0), ((3, 8, 8), 3, 5, 2, 2)],
)
def test_matches_naive_reference(in_shape, channels, kernel, stride, padding):
    torch.manual_seed(0)
    layer = LocallyConnected2d(in_shape, channels, kernel, stride, padding, init="torch").double()
    x = torch.randn(3, layer.in_features, dtype=torch.float64)

    assert torch.allclose(layer(x), naive_locally_connected(layer, x), atol=1e-12)


def test_gradients_match_naive_reference():
    torch.manual_seed(1)
    layer = LocallyConnected2d((2, 6, 6), 3, 3, 1, 1).double()
    x = torch.randn(4, layer.in_features, dtype=torch.float64, requires_grad=True)

    layer(x).square().sum().backward()
    fast = (x.grad.clone(), layer.weight.grad.clone(), layer.bias.grad.clone())
    x.grad = None
    layer.zero_grad()
    naive_locally_connected(layer, x).square().sum().backward()

    for got, expected in zip(fast, (x.grad, layer.weight.grad, layer.bias.grad)):
        assert torch.allclose(got, expected, atol=1e-10)


def test_locations_do_not_share_weights():
    layer = LocallyConnected2d((1, 4, 4), 1, 2, stride=2)
    x = torch.ones(1, 16)
    before = layer(x).detach()

    with torch.no_grad():
        layer.weight[0].add_(1.0)  # only location (0, 0)
    after = layer(x).detach()

    assert after[0, 0] != before[0, 0]
    assert torch.equal(after[0, 1:], before[0, 1:])


def test_output_shape_of_hinton_mnist_layers():
    first = LocallyConnected2d((1, 28, 28), 128, 10, stride=6)
    second = LocallyConnected2d(first.out_shape, 220, 2)
    third = LocallyConnected2d(second.out_shape, 512, 2)

    assert first.out_shape == (128, 4, 4)
    assert second.out_shape == (220, 3, 3)
    assert third.out_shape == (512, 2, 2)
    assert second.weight.shape == (9, 128 * 4, 220)


def test_rejects_kernel_larger_than_input():
    with pytest.raises(UsageError, match="kernel 9"):
        LocallyConnected2d((1, 4, 4), 2, 9)


def test_rejects_wrong_input_width():
    layer = LocallyConnected2d((1, 4, 4), 2, 2)
    with pytest.raises(ValueError, match=r"\(batch, 16\)"):
        layer(torch.rand(2, 15))


def test_ff_local_block_with_peer_normalisation_trains():
    from forwardforward.optim import OptimizerConfig

    torch.manual_seed(0)
    block = FFLocal((1, 8, 8), 4, 3, peer_strength=0.03)
    block.configure_optimizer(OptimizerConfig(lr=0.01))
    x_pos, x_neg = torch.rand(16, 64), torch.rand(16, 64)

    h_pos, h_neg, metrics = block.train_step(x_pos, x_neg)

    assert block.units == 4 * 6 * 6
    assert h_pos.shape == (16, 144)
    assert block.peer.running_mean.shape == (144,)
    assert not torch.equal(block.peer.running_mean, torch.full((144,), 0.5))
    assert torch.isfinite(metrics["loss"])
