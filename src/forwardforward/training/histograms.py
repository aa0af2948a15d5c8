"""Fixed-bin histograms of positive and negative goodness, one set per block and epoch.

The training loop adds the goodness of every training sample as it trains, so a histogram
costs a few hundred integers per block and epoch instead of the samples themselves. Bins are
equal steps of log10(goodness / threshold) from 10^-3 to 10^2 times the block's threshold;
one extra slot below the range (which also counts goodness 0) and one above it keep every
sample. A negative or NaN goodness, which no registered goodness function produces, has no
logarithm and is counted in the slot above. The ratio to the threshold puts blocks of any width on one axis, and the log scale
separates the negatives near 0 from the positives above the threshold.

`goodness_histograms.jsonl` in a run directory contains one JSON object per epoch:
`{"epoch": 3, "bins": {"log10_ratio_min": -3.0, "log10_ratio_max": 2.0, "count": 100},
"layers": {"1": {"threshold": 500.0, "pos": SIDE, "neg": SIDE}, ...}}`, where SIDE is
`{"counts": [underflow, bin 1, ..., bin 100, overflow], "sum": ..., "sum_squares": ...,
"min": ..., "max": ...}` over the raw goodness. Layers that were not run in an epoch (above
the trained layer of the greedy schedule) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

HISTOGRAMS_FILE = "goodness_histograms.jsonl"
LOG10_RATIO_MIN = -3.0
LOG10_RATIO_MAX = 2.0
NUM_BINS = 100
SIDES = ("pos", "neg")


def bin_edges(bins: dict) -> np.ndarray:
    """Return the `(count + 1,)` bin edges in units of the threshold from a record's `bins`."""
    return 10.0 ** np.linspace(bins["log10_ratio_min"], bins["log10_ratio_max"], bins["count"] + 1)


class GoodnessHistograms:
    """Histograms of positive and negative goodness per block, summed over one epoch.

    Everything stays on the training device until `to_record`, so adding a batch never
    waits for the device.

    Args:
        thresholds: each block's threshold, bottom first; goodness is binned as a ratio to it.
        device: where the goodness tensors live.

    Raises:
        ValueError: no thresholds, or a threshold that is not positive.
    """

    def __init__(self, thresholds: Sequence[float], device: torch.device | str = "cpu") -> None:
        if len(thresholds) == 0 or any(not t > 0 for t in thresholds):
            raise ValueError(f"thresholds must be a non-empty list of positive numbers, got {list(thresholds)}")
        self.thresholds = [float(t) for t in thresholds]
        self.device = torch.device(device)
        self.edges = torch.linspace(LOG10_RATIO_MIN, LOG10_RATIO_MAX, NUM_BINS + 1, device=self.device)
        self._segment_cache: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor]] = {}
        self.reset()

    def reset(self) -> None:
        """Forget all counts, as at the start of an epoch."""
        segments = 2 * len(self.thresholds)
        self.counts = torch.zeros(segments, NUM_BINS + 2, dtype=torch.long, device=self.device)
        self.sums = torch.zeros(segments, dtype=torch.float64, device=self.device)
        self.sum_squares = torch.zeros(segments, dtype=torch.float64, device=self.device)
        self.minimum = torch.full((segments,), float("inf"), dtype=torch.float64, device=self.device)
        self.maximum = torch.full((segments,), float("-inf"), dtype=torch.float64, device=self.device)

    def _segments(self, sizes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        # Segment 2 * layer + side of every value, and the threshold it is divided by. Batches
        # of one epoch share their sizes except the last, so these are built about twice.
        if sizes not in self._segment_cache:
            ids = torch.repeat_interleave(
                torch.arange(len(sizes), device=self.device), torch.tensor(sizes, device=self.device)
            )
            per_segment = torch.tensor(self.thresholds, device=self.device).repeat_interleave(2)
            self._segment_cache[sizes] = (ids, per_segment[ids])
        return self._segment_cache[sizes]

    @torch.no_grad()
    def add(self, goodness_pos: Sequence[torch.Tensor], goodness_neg: Sequence[torch.Tensor]) -> None:
        """Count one batch's goodness for the bottom `len(goodness_pos)` blocks.

        Args:
            goodness_pos: per block, bottom first, the goodness of the positive samples, any
                shape (`(batch,)` for fully connected blocks); every element counts.
            goodness_neg: the same for the negative samples.

        Raises:
            ValueError: the two lists differ in length or list more blocks than there are.
        """
        if len(goodness_pos) != len(goodness_neg) or len(goodness_pos) > len(self.thresholds):
            raise ValueError(
                f"expected equal numbers of positive and negative goodness tensors for at most "
                f"{len(self.thresholds)} blocks, got {len(goodness_pos)} and {len(goodness_neg)}"
            )
        flat = [g.detach().reshape(-1) for pair in zip(goodness_pos, goodness_neg) for g in pair]
        ids, divisors = self._segments(tuple(g.numel() for g in flat))
        values = torch.cat(flat)  # (all values,) in segment order
        slots = torch.bucketize(torch.log10(values / divisors), self.edges)  # 0 = below, NUM_BINS + 1 = above
        width = NUM_BINS + 2
        used = 2 * len(goodness_pos)
        self.counts[:used] += torch.bincount(ids * width + slots, minlength=used * width).view(used, width)

        values64 = values.double()
        self.sums.index_add_(0, ids, values64)
        self.sum_squares.index_add_(0, ids, values64.square())
        self.minimum.scatter_reduce_(0, ids, values64, reduce="amin")
        self.maximum.scatter_reduce_(0, ids, values64, reduce="amax")

    def to_record(self, epoch: int) -> dict:
        """Return the epoch's histograms as plain values, in the format of the module docstring."""
        counts = self.counts.cpu().tolist()
        sums, squares = self.sums.cpu().tolist(), self.sum_squares.cpu().tolist()
        minimum, maximum = self.minimum.cpu().tolist(), self.maximum.cpu().tolist()
        layers = {}
        for layer, threshold in enumerate(self.thresholds):
            if sum(counts[2 * layer]) == 0:
                continue  # not run this epoch
            entry: dict = {"threshold": threshold}
            for side_index, side in enumerate(SIDES):
                segment = 2 * layer + side_index
                entry[side] = {
                    "counts": counts[segment],
                    "sum": sums[segment],
                    "sum_squares": squares[segment],
                    "min": minimum[segment],
                    "max": maximum[segment],
                }
            layers[str(layer + 1)] = entry
        bins = {"log10_ratio_min": LOG10_RATIO_MIN, "log10_ratio_max": LOG10_RATIO_MAX, "count": NUM_BINS}
        return {"epoch": epoch, "bins": bins, "layers": layers}
