import pytest
import torch

from forwardforward.errors import UsageError
from forwardforward.labels import overlay_labels, overlay_neutral
from forwardforward.network import FFNetwork
from forwardforward.readout import LinearReadout, predict_by_goodness


def make_network():
    torch.manual_seed(0)
    return FFNetwork.fully_connected(30, [16, 12, 8], num_classes=10)


def reference_prediction(network, image, skip_first):
    """One sample at a time, one label at a time, as a plain loop."""
    scores = []
    for label in range(10):
        x = overlay_labels(image.unsqueeze(0), torch.tensor([label]), 10)
        activities = network.activities(x)
        scores.append(sum(network.blocks[l].goodness(a).item() for l, a in enumerate(activities) if l >= skip_first))
    return max(range(10), key=lambda c: scores[c])


@pytest.mark.parametrize("skip_first", [0, 1, 2])
def test_goodness_prediction_matches_per_sample_loop(skip_first):
    network = make_network()
    images = torch.rand(25, 30)
    predicted = predict_by_goodness(network, images, skip_first=skip_first)
    expected = torch.tensor([reference_prediction(network, img, skip_first) for img in images])
    assert torch.equal(predicted, expected)


def test_goodness_prediction_independent_of_batch():
    network = make_network()
    images = torch.rand(12, 30)
    together = predict_by_goodness(network, images)
    alone = torch.cat([predict_by_goodness(network, images[i : i + 1]) for i in range(12)])
    assert torch.equal(together, alone)


def test_goodness_per_label_shape():
    network = make_network()
    assert network.goodness_per_label(torch.rand(3, 30)).shape == (3, 3, 10)


def test_prediction_rejects_bad_skip():
    with pytest.raises(UsageError, match="skip 3 of 3"):
        predict_by_goodness(make_network(), torch.rand(2, 30), skip_first=3)


def test_readout_uses_layers_above_skip():
    readout = LinearReadout([16, 12, 8], num_classes=10, skip_first=1)
    assert readout.linear.in_features == 20
    activities = make_network().activities(overlay_neutral(torch.rand(4, 30), 10))
    assert readout(activities).shape == (4, 10)


def test_readout_learns_and_leaves_network_alone():
    network = make_network()
    readout = LinearReadout(network.widths, num_classes=10)
    from forwardforward.optim import OptimizerConfig

    readout.configure_optimizer(OptimizerConfig(name="sgd", lr=0.5, weight_decay=0.0))
    images, labels = torch.rand(40, 30), torch.randint(0, 10, (40,))
    before = [p.clone() for p in network.parameters()]
    activities = network.activities(overlay_neutral(images, 10))
    first = readout.train_step(activities, labels)[1].item()
    for _ in range(100):
        last = readout.train_step(activities, labels)[1].item()
    assert last < first
    assert all(torch.equal(p, q) for p, q in zip(network.parameters(), before))
