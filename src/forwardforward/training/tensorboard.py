"""TensorBoard logging of a run's per-epoch metrics and goodness histograms.

The event files go to `RUN_DIR/tensorboard/`; view them with `tensorboard --logdir RUN_DIR`.
Scalars use the keys of `metrics.jsonl` as tags (`layer1/loss`, `test/error_goodness`), and
the histograms of `goodness_histograms.jsonl` appear as `layer1/goodness_pos_histogram` and
`layer1/goodness_neg_histogram`, with goodness in its raw units.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import UsageError
from .histograms import SIDES, bin_edges

TENSORBOARD_DIR = "tensorboard"
MISSING_TENSORBOARD = (
    "TensorBoard logging needs the tensorboard package, which is not installed; install it "
    "with: pip install 'forwardforward[tensorboard]', or train without --tensorboard"
)


def summary_writer_class() -> type:
    """Return `torch.utils.tensorboard.SummaryWriter`.

    Raises:
        UsageError: the tensorboard package is not installed.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError(MISSING_TENSORBOARD) from None
    return SummaryWriter


class TensorBoardLogger:
    """Write one step per epoch of scalars and goodness histograms to `RUN_DIR/tensorboard/`.

    Args:
        run_dir: the run directory.
        resumed_after: the epoch a resumed run continues from; events of later epochs that an
            interrupted process already wrote are dropped. None for a new run.

    Raises:
        UsageError: the tensorboard package is not installed.
    """

    def __init__(self, run_dir: Path, resumed_after: int | None = None) -> None:
        writer_class = summary_writer_class()
        purge_step = None if resumed_after is None else resumed_after + 1
        self.writer = writer_class(log_dir=str(Path(run_dir) / TENSORBOARD_DIR), purge_step=purge_step)

    def log_epoch(self, record: dict, histograms: dict | None = None) -> None:
        """Log one `metrics.jsonl` record, and the epoch's histogram record, at step `epoch`."""
        epoch = int(record["epoch"])
        for key, value in record.items():
            if key == "epoch" or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            self.writer.add_scalar(key, value, global_step=epoch)
        if histograms is not None:
            self._log_histograms(histograms, epoch)
        self.writer.flush()

    def _log_histograms(self, histograms: dict, epoch: int) -> None:
        ratio_edges = bin_edges(histograms["bins"])
        for layer, entry in histograms["layers"].items():
            threshold = entry["threshold"]
            for side in SIDES:
                stats = entry[side]
                counts = stats["counts"]
                if not counts:
                    continue
                # TensorBoard wants the upper limit of every bucket. Slot s ends at edge s, so
                # the underflow slot 0 ends at the lowest edge, and the overflow slot ends at
                # the largest goodness seen (or the top edge).
                all_limits = [float(threshold * edge) for edge in ratio_edges]
                top = stats["max"] if math.isfinite(stats["max"]) else all_limits[-1]
                all_limits.append(max(top, all_limits[-1]))
                first = stats["first_slot"]
                limits = all_limits[first : first + len(counts)]
                self.writer.add_histogram_raw(
                    f"layer{layer}/goodness_{side}_histogram",
                    min=stats["min"], max=stats["max"], num=sum(counts), sum=stats["sum"],
                    sum_squares=stats["sum_squares"], bucket_limits=limits, bucket_counts=counts,
                    global_step=epoch,
                )

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()
