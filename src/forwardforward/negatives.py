"""Negative data: wrong labels, hybrid images, self-contrastive pairs, corrupted and generated images.

The label generators return a wrong label for every sample. A negative that carries the true
label would be a positive sample trained with the opposite sign, which is a common bug in FF
code. Hybrid images, the image generators (`corrupt_images`, `AdversarialNegativeGenerator`)
and the pairs of Self-Contrastive FF need no labels at all.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_wrong_labels(
    labels: torch.Tensor, num_classes: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw, for each sample, a label uniformly from the `num_classes - 1` wrong ones.

    Args:
        labels: `(batch,)` true labels in `[0, num_classes)`.
        num_classes: at least 2.
        generator: random source on the labels' device, for reproducible draws.

    Returns:
        `(batch,)` int64 labels, each different from the true label.

    Raises:
        ValueError: `num_classes` is below 2.
    """
    if num_classes < 2:
        raise ValueError(f"wrong labels need at least 2 classes, got num_classes={num_classes}")
    offset = torch.randint(
        1, num_classes, labels.shape, generator=generator, device=labels.device
    )
    return (labels + offset) % num_classes


def hard_wrong_labels(
    scores: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Sample wrong labels in proportion to softmax(scores / temperature) over the wrong classes.

    Hinton's Matlab code draws the negative label from the linear read-out's softmax with the
    true class removed, so a label the network confuses with the truth is chosen more often.
    Any per-class score works, for example accumulated goodness.

    Args:
        scores: `(batch, num_classes)` logits or goodness per class.
        labels: `(batch,)` true labels.
        generator: random source on the scores' device.
        temperature: divides the scores before the softmax; must be positive.

    Returns:
        `(batch,)` int64 labels, never equal to the true label.

    Raises:
        ValueError: shapes disagree, fewer than 2 classes, or a non-positive temperature.
    """
    if scores.dim() != 2 or scores.shape[0] != labels.shape[0]:
        raise ValueError(
            f"scores must be (batch, num_classes) with batch {labels.shape[0]}, got "
            f"{tuple(scores.shape)}"
        )
    if scores.shape[1] < 2:
        raise ValueError(f"wrong labels need at least 2 classes, got {scores.shape[1]}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = scores.detach().float() / temperature
    logits = logits.masked_fill(
        torch.nn.functional.one_hot(labels, scores.shape[1]).bool(), float("-inf")
    )
    # Subtracting the row maximum keeps exp() finite; non-finite scores fall back to uniform.
    logits = logits - logits.max(dim=1, keepdim=True).values
    probs = logits.exp()
    probs = torch.where(torch.isfinite(probs), probs, torch.zeros_like(probs))
    wrong = torch.ones_like(probs).scatter_(1, labels.unsqueeze(1), 0.0)
    empty = probs.sum(dim=1, keepdim=True) <= 0
    probs = torch.where(empty, wrong, probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


# The blur filter of Hinton (2022) for hybrid-image masks, applied along rows and columns.
_BLUR_TAPS = (0.25, 0.5, 0.25)


def hybrid_mask(
    batch: int,
    height: int,
    width: int,
    blur_passes: int = 6,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw masks with large regions of ones and zeros, for mixing two images.

    A random bit image (each pixel 0 or 1 with probability 1/2) is blurred `blur_passes`
    times with the filter [1/4, 1/2, 1/4] along rows and then along columns, and thresholded
    at 0.5 (Hinton 2022). The edges are padded by repeating the border pixel, so the blur
    does not pull border pixels towards zero.

    Args:
        batch: number of masks.
        height: mask height in pixels.
        width: mask width in pixels.
        blur_passes: blurs in each direction; 0 leaves independent random bits.
        generator: random source on `device`, for reproducible masks.
        device: where the masks are made; the generator's device when None.

    Returns:
        `(batch, height, width)` float32 tensor of zeros and ones.

    Raises:
        ValueError: a non-positive size or a negative number of passes.
    """
    if batch <= 0 or height <= 0 or width <= 0:
        raise ValueError(f"mask size must be positive, got batch={batch}, height={height}, width={width}")
    if blur_passes < 0:
        raise ValueError(f"blur_passes must not be negative, got {blur_passes}")
    if device is None:
        device = generator.device if generator is not None else "cpu"
    bits = torch.rand(batch, 1, height, width, generator=generator, device=device).lt(0.5).float()
    taps = torch.tensor(_BLUR_TAPS, device=bits.device)
    row_filter = taps.view(1, 1, 1, 3)
    column_filter = taps.view(1, 1, 3, 1)
    for _ in range(blur_passes):
        bits = F.conv2d(F.pad(bits, (1, 1, 0, 0), mode="replicate"), row_filter)
        bits = F.conv2d(F.pad(bits, (0, 0, 1, 1), mode="replicate"), column_filter)
    return (bits > 0.5).float().squeeze(1)  # (batch, height, width)


def hybrid_images(
    images: torch.Tensor,
    image_shape: tuple[int, int, int],
    blur_passes: int = 6,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mix every image with another image of the batch under a hybrid mask.

    Each output takes `images[i]` where the mask is 1 and `images[j]` where it is 0, with
    `j = (i + offset) % batch` for one random offset in `[1, batch)`, so the two sources are
    always different samples. Every channel uses the same mask. These are the negative data
    of unsupervised FF (Hinton 2022): real short-range structure, wrong long-range shapes.

    Args:
        images: `(batch, channels * height * width)` flattened images, batch at least 2.
        image_shape: `(channels, height, width)` of one image.
        blur_passes: see `hybrid_mask`.
        generator: random source on the images' device.

    Returns:
        `(batch, channels * height * width)` hybrid images.

    Raises:
        ValueError: fewer than 2 images, or a feature count that does not match `image_shape`.
    """
    batch = images.shape[0]
    channels, height, width = image_shape
    if images.dim() != 2 or images.shape[1] != channels * height * width:
        raise ValueError(
            f"images must have shape (batch, {channels * height * width}) for image shape "
            f"{tuple(image_shape)}, got {tuple(images.shape)}"
        )
    if batch < 2:
        raise ValueError(f"hybrid images mix two different samples, so the batch needs at least 2, got {batch}")
    offset = int(torch.randint(1, batch, (1,), generator=generator, device=images.device))
    partners = torch.roll(images, shifts=offset, dims=0)  # row i holds images[i - offset]
    mask = hybrid_mask(batch, height, width, blur_passes, generator, images.device)
    mask = mask.unsqueeze(1).expand(batch, channels, height, width).reshape(batch, -1)
    return mask * images + (1.0 - mask) * partners


def self_contrastive_pairs(
    x1: torch.Tensor,
    x2: torch.Tensor | None = None,
    num_negatives: int = 1,
    generator: torch.Generator | None = None,
    dim: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Build the positive and negative pairs of Self-Contrastive FF (Chen et al. 2025).

    A positive pair is a sample concatenated with itself (or with a second view of itself).
    A negative pair is the sample concatenated with another sample of the batch. Each of the
    `num_negatives` negative sets uses its own cyclic shift s in [1, batch - 1] of the second
    half, drawn without repetition. So sample i is paired with sample (i + s) mod batch and
    never with itself.

    Args:
        x1: `(batch, features)` or `(batch, channels, ...)`: the first half of every pair.
        x2: a second view of the same samples, with the shape of `x1` (for example an
            independent augmentation); None uses `x1`.
        num_negatives: negative pairs per positive, from 1 to batch - 1.
        generator: random source for the shifts (on the CPU).
        dim: the axis to concatenate along: 1 is the feature axis of `(batch, features)` and
            the channel axis of `(batch, channels, height, width)`.

    Returns:
        `(x_pos, x_neg)`: `(batch, 2 * size_dim, ...)` and `(num_negatives * batch, 2 *
        size_dim, ...)`, the negatives grouped by shift.

    Raises:
        ValueError: the two views differ in shape, the batch has fewer than 2 samples, or
            `num_negatives` is outside [1, batch - 1].
    """
    x2 = x1 if x2 is None else x2
    if x1.shape != x2.shape:
        raise ValueError(f"the two views must have the same shape, got {tuple(x1.shape)} and {tuple(x2.shape)}")
    batch = x1.shape[0]
    if batch < 2:
        raise ValueError(f"negative pairs need at least 2 samples in the batch, got {batch}")
    if not 1 <= num_negatives <= batch - 1:
        raise ValueError(f"num_negatives must be in [1, {batch - 1}] for a batch of {batch}, got {num_negatives}")
    x_pos = torch.cat([x1, x2], dim=dim)  # (batch, 2 * size_dim, ...)
    shifts = torch.randperm(batch - 1, generator=generator)[:num_negatives] + 1
    negatives = [torch.cat([x1, torch.roll(x2, -int(s), dims=0)], dim=dim) for s in shifts]
    return x_pos, torch.cat(negatives)


def corrupt_images(
    images: torch.Tensor,
    image_shape: tuple[int, int, int],
    noise_std: float = 0.3,
    mask_fraction: float = 0.3,
    max_shift: int = 3,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Make negative images by corrupting real ones: a shift, a random mask and Gaussian noise.

    Each image is translated by up to `max_shift` pixels (zero fill), then each pixel is set
    to 0 with probability `mask_fraction`, then noise with standard deviation `noise_std` is
    added and the result clipped to [0, 1]. The corrupted image keeps its low-level statistics
    but loses the fine structure of a real digit, so a network trained to reject it has to
    model that structure.

    Args:
        images: `(batch, features)` flattened images with values in [0, 1].
        image_shape: `(channels, height, width)` with product `features`.
        noise_std: standard deviation of the added noise; 0 turns it off.
        mask_fraction: probability of masking each pixel, in [0, 1).
        max_shift: largest translation in pixels; 0 turns it off.
        generator: random source on the images' device.

    Returns:
        `(batch, features)` corrupted images in [0, 1].

    Raises:
        ValueError: a shape that does not match `image_shape`, or a setting out of range.
    """
    channels, height, width = image_shape
    if images.dim() != 2 or images.shape[1] != channels * height * width:
        raise ValueError(
            f"images must be (batch, {channels * height * width}) for image_shape {image_shape}, "
            f"got {tuple(images.shape)}"
        )
    if noise_std < 0 or not 0 <= mask_fraction < 1:
        raise ValueError(f"need noise_std >= 0 and mask_fraction in [0, 1), got {noise_std} and {mask_fraction}")
    from .data.augment import random_shift

    x = random_shift(images.view(-1, channels, height, width), max_shift, generator).flatten(1)
    if mask_fraction > 0:
        keep = torch.rand(x.shape, generator=generator, device=x.device) >= mask_fraction
        x = x * keep
    if noise_std > 0:
        x = x + noise_std * torch.randn(x.shape, generator=generator, device=x.device)
    return x.clamp(0.0, 1.0)


class AdversarialNegativeGenerator(torch.nn.Module):
    """A small generator trained to produce inputs that an FF network scores as positive.

    An MLP maps Gaussian noise to images in [0, 1]. Its training step raises the network's
    log-probability that the generated samples are positive, by backpropagating through the
    network into the generator's weights only. The FF blocks themselves still learn only from
    their local losses, with the generated samples as negatives. So the negatives keep moving
    to where the network is currently wrong.

    Args:
        out_features: size of a generated (flattened) image.
        latent_dim: size of the noise vector.
        hidden: width of the hidden layer.

    Raises:
        ValueError: a non-positive size.
    """

    def __init__(self, out_features: int, latent_dim: int = 64, hidden: int = 512) -> None:
        super().__init__()
        if min(out_features, latent_dim, hidden) <= 0:
            raise ValueError(
                f"sizes must be positive, got out_features={out_features}, latent_dim={latent_dim}, hidden={hidden}"
            )
        self.latent_dim = latent_dim
        self.net = torch.nn.Sequential(
            torch.nn.Linear(latent_dim, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, out_features),
            torch.nn.Sigmoid(),
        )
        self.optimizer: torch.optim.Optimizer | None = None

    def configure_optimizer(self, lr: float = 1e-3) -> torch.optim.Optimizer:
        """Create the generator's own Adam optimizer."""
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)
        return self.optimizer

    def sample(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw `(batch, out_features)` images in [0, 1] (with the graph to the generator)."""
        device = self.net[0].weight.device
        noise = torch.randn(batch, self.latent_dim, generator=generator, device=device)
        return self.net(noise)

    def train_step(
        self, score_fn, batch: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Take one step that raises `score_fn` (a per-sample log-probability of positive).

        Only the generator's parameters receive gradients: the gradient is taken with
        `torch.autograd.grad` with respect to them alone, so the scoring network's `.grad`
        fields stay untouched.

        Args:
            score_fn: maps `(batch, out_features)` images to `(batch,)` scores to maximise.
            batch: number of samples to generate.
            generator: random source for the noise.

        Returns:
            The detached scalar generator loss (minus the mean score).

        Raises:
            RuntimeError: `configure_optimizer` was not called first.
        """
        if self.optimizer is None:
            raise RuntimeError("call configure_optimizer() before train_step()")
        params = list(self.net.parameters())
        loss = -score_fn(self.sample(batch, generator)).mean()
        grads = torch.autograd.grad(loss, params)
        for p, g in zip(params, grads):
            p.grad = g
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()
