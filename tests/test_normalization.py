import torch

from forwardforward.normalization import PeerNormalization, rms_normalize


def test_rms_normalize_gives_unit_mean_square():
    x = torch.randn(4, 10) * 7
    y = rms_normalize(x)
    assert torch.allclose(y.square().mean(dim=1), torch.ones(4), atol=1e-6)


def test_rms_normalize_keeps_direction_and_zero_rows():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    y = rms_normalize(x)
    rms = (12.5) ** 0.5
    assert torch.allclose(y[0], torch.tensor([3.0, 4.0]) / rms)
    assert torch.equal(y[1], torch.zeros(2))


def test_peer_running_mean_update():
    peer = PeerNormalization(2, strength=0.03)
    peer.update(torch.tensor([[1.0, 0.0], [3.0, 0.0]]))
    # 0.9 * 0.5 + 0.1 * batch mean
    assert torch.allclose(peer.running_mean, torch.tensor([0.45 + 0.2, 0.45]))


def test_peer_loss_gradient_matches_pull():
    peer = PeerNormalization(3, strength=0.1)
    peer.running_mean.copy_(torch.tensor([1.0, 2.0, 6.0]))
    z = torch.zeros(4, 3, requires_grad=True)
    peer.loss(z, gradient_scale=2.0).backward()
    pull = 0.1 * (3.0 - torch.tensor([1.0, 2.0, 6.0]))
    assert torch.allclose(z.grad, (-2.0 * pull / 4).expand(4, 3))


def test_peer_state_survives_state_dict():
    peer = PeerNormalization(5)
    peer.update(torch.rand(8, 5))
    restored = PeerNormalization(5)
    restored.load_state_dict(peer.state_dict())
    assert torch.equal(restored.running_mean, peer.running_mean)
    batch = torch.rand(8, 5)
    peer.update(batch)
    restored.update(batch)
    assert torch.equal(restored.running_mean, peer.running_mean)
