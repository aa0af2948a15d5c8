import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from forwardforward.negatives import hard_wrong_labels, random_wrong_labels


@settings(max_examples=60, deadline=None)
@given(
    num_classes=st.integers(2, 12),
    batch=st.integers(1, 64),
    seed=st.integers(0, 2**31 - 1),
)
def test_random_wrong_labels_never_true(num_classes, batch, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (batch,), generator=g)
    negatives = random_wrong_labels(labels, num_classes, g)
    assert (negatives != labels).all()
    assert ((negatives >= 0) & (negatives < num_classes)).all()


@settings(max_examples=60, deadline=None)
@given(
    num_classes=st.integers(2, 12),
    batch=st.integers(1, 64),
    seed=st.integers(0, 2**31 - 1),
    scale=st.sampled_from([0.0, 1.0, 1e3, 1e30]),
)
def test_hard_wrong_labels_never_true(num_classes, batch, seed, scale):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (batch,), generator=g)
    scores = torch.randn(batch, num_classes, generator=g) * scale
    # Make the true class by far the most likely one: it must still never be drawn.
    scores[torch.arange(batch), labels] = 1e30
    negatives = hard_wrong_labels(scores, labels, g)
    assert (negatives != labels).all()


def test_hard_wrong_labels_with_nonfinite_scores():
    labels = torch.tensor([0, 1])
    scores = torch.tensor([[0.0, float("nan"), float("nan")], [float("inf"), 0.0, float("inf")]])
    negatives = hard_wrong_labels(scores, labels, torch.Generator().manual_seed(0))
    assert (negatives != labels).all()


def test_random_wrong_labels_are_uniform():
    g = torch.Generator().manual_seed(0)
    labels = torch.zeros(40000, dtype=torch.long)
    counts = torch.bincount(random_wrong_labels(labels, 5, g), minlength=5).float()
    assert counts[0] == 0
    assert torch.allclose(counts[1:] / 40000, torch.full((4,), 0.25), atol=0.01)


def test_hard_wrong_labels_follow_softmax():
    g = torch.Generator().manual_seed(0)
    n = 40000
    labels = torch.zeros(n, dtype=torch.long)
    scores = torch.log(torch.tensor([5.0, 1.0, 2.0, 1.0])).expand(n, 4)
    counts = torch.bincount(hard_wrong_labels(scores, labels, g), minlength=4).float() / n
    assert torch.allclose(counts, torch.tensor([0.0, 0.25, 0.5, 0.25]), atol=0.01)


def test_hard_wrong_labels_rejects_bad_input():
    with pytest.raises(ValueError, match="temperature"):
        hard_wrong_labels(torch.zeros(2, 3), torch.tensor([0, 1]), temperature=0)
    with pytest.raises(ValueError, match="num_classes"):
        hard_wrong_labels(torch.zeros(3, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="at least 2"):
        random_wrong_labels(torch.tensor([0]), 1)
