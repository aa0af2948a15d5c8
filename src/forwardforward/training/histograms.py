"""Fixed-bin histograms of positive and negative goodness, one set per block and epoch.

The training loop adds the goodness of every training sample as it trains, so a histogram
costs some integers per block and epoch instead of the samples themselves. Bins are 1,000
equal steps of log10(goodness / threshold) from 10^-3 to 10^2 times the block's threshold,
each 0.005 decades (about 1.2 %) wide, fine enough to resolve the few percent by which
positives and negatives can straddle the threshold. One extra slot below the range (which
also counts goodness 0) and one above it keep every sample. A negative or NaN goodness, which no registered goodness function produces, has no
logarithm and is counted in the slot above. The ratio to the threshold puts blocks of any width on one axis, and the log scale
separates the negatives near 0 from the positives above the threshold.

`goodness_histograms.jsonl` in a run directory contains one JSON object per epoch:
`{"epoch": 3, "bins": {"log10_ratio_min": -3.0, "log10_ratio_max": 2.0, "count": 1000},
"layers": {"1": {"threshold": 500.0, "pos": SIDE, "neg": SIDE}, ...}}`, where SIDE is
`{"first_slot": k, "counts": [...], "sum": ..., "sum_squares": ..., "min": ..., "max": ...}`.
Slot 0 is the underflow, slots 1 to 1,000 the bins and slot 1,001 the overflow. `counts`
lists slots `k, k + 1, ...` up to the last non-empty one, so the many empty slots around a
narrow distribution take no space. `sum` to `max` are over the raw goodness. Layers that were
not run in an epoch (above the trained layer of the greedy schedule) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

HISTOGRAMS_FILE = "goodness_histograms.jsonl"
LOG10_RATIO_MIN = -3.0
LOG10_RATIO_MAX = 2.0
NUM_BINS = 1000
SIDES = ("pos", "neg")


def bin_edges(bins: dict) -> np.ndarray:
    """Return the `(count + 1,)` bin edges in units of the threshold from a record's `bins`."""
    return 10.0 ** np.linspace(bins["log10_ratio_min"], bins["log10_ratio_max"], bins["count"] + 1)


def full_counts(side: dict, bins: dict) -> np.ndarray:
    """Expand one side's stored counts to all `(count + 2,)` slots, underflow and overflow included."""
    counts = np.zeros(bins["count"] + 2, dtype=np.int64)
    first = side.get("first_slot", 0)
    counts[first : first + len(side["counts"])] = side["counts"]
    return counts


def _trim(counts: list[int]) -> tuple[int, list[int]]:
    nonzero = [i for i, c in enumerate(counts) if c]
    if not nonzero:
        return 0, []
    return nonzero[0], counts[nonzero[0] : nonzero[-1] + 1]


class GoodnessHistograms:
    """Histograms of positive and negative goodness per block, summed over one epoch.

    Everything stays on the training device until `to_record`. Adding a batch reads nothing
    back to the host once the segment layout of its batch size is cached.

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
        # index_add_ rather than bincount: bincount reads its input's maximum back to the host,
        # which would make every batch wait for a CUDA device.
        flat_slots = ids * (NUM_BINS + 2) + slots
        self.counts.view(-1).index_add_(0, flat_slots, torch.ones_like(flat_slots))

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
                first_slot, trimmed = _trim(counts[segment])
                entry[side] = {
                    "first_slot": first_slot,
                    "counts": trimmed,
                    "sum": sums[segment],
                    "sum_squares": squares[segment],
                    "min": minimum[segment],
                    "max": maximum[segment],
                }
            layers[str(layer + 1)] = entry
        bins = {"log10_ratio_min": LOG10_RATIO_MIN, "log10_ratio_max": LOG10_RATIO_MAX, "count": NUM_BINS}
        return {"epoch": epoch, "bins": bins, "layers": layers}
