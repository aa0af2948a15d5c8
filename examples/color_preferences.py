"""One FF block of 16 units learns which RGB colours are liked: warm ones, where red beats blue."""

import torch

from forwardforward.layers import FFLinear
from forwardforward.optim import OptimizerConfig

generator = torch.Generator().manual_seed(0)


def sample_colours(liked: bool, count: int = 256) -> torch.Tensor:
    """Draw `(count, 3)` RGB colours in [0, 1] that the seeded rule likes (red > blue + 0.2) or dislikes."""
    colours = torch.rand(4 * count, 3, generator=generator)
    keep = (colours[:, 0] > colours[:, 2] + 0.2) == liked
    return colours[keep][:count]


block = FFLinear(3, 16)  # goodness: sum of squared ReLU units; threshold: 16, the number of units
block.configure_optimizer(OptimizerConfig(name="adam", lr=0.01, weight_decay=0.0))
for step in range(300):
    # Positive data are liked colours, negative data disliked ones; inputs are centred on grey.
    _, _, metrics = block.train_step(sample_colours(True) - 0.5, sample_colours(False) - 0.5)
print(f"final loss {metrics['loss'].item():.3f}")

examples = {"red": (0.9, 0.1, 0.1), "orange": (1.0, 0.6, 0.0), "grey": (0.5, 0.5, 0.5),
            "blue": (0.1, 0.2, 0.9), "purple": (0.6, 0.1, 0.7)}
with torch.no_grad():
    goodness = block.goodness(block(torch.tensor(list(examples.values())) - 0.5))
for (name, rgb), value in zip(examples.items(), goodness.tolist()):
    verdict = "liked" if value > block.threshold else "disliked"
    print(f"{name:>7} {rgb}: goodness {value:6.2f} (threshold {block.threshold:.0f}) -> {verdict}")
