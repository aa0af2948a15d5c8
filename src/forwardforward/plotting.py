"""Figures of a run directory: learning curves, goodness histograms, per-layer accuracy, weights.

Everything is read from the files that training writes (`config.json`, `metrics.jsonl`,
`goodness_histograms.jsonl`, `checkpoint.pt`), so a run can be plotted while it trains or long
after. Plotting needs matplotlib, the optional extra `forwardforward[plot]`; it is imported only
when a figure is made. The figures use matplotlib's object-oriented API without pyplot, so
they never open a window and never touch a global figure state.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import RunConfig
from .data import DATASETS
from .errors import UsageError
from .goodness import default_threshold
from .training.checkpoint import load_checkpoint
from .training.histograms import HISTOGRAMS_FILE, SIDES, full_counts
from .training.metrics import MetricsLog
from .training.run import CHECKPOINT_FILE, METRICS_FILE, read_run_config

MISSING_MATPLOTLIB = (
    "plotting needs matplotlib, which is not installed; install it with: "
    "pip install 'forwardforward[plot]'"
)
FIGURE_NAMES = ("learning_curves", "goodness_histograms", "layer_accuracy", "first_layer_weights")
DEFAULT_PLOT_DIR = "plots"
MAX_HISTOGRAM_EPOCHS = 4
HISTOGRAM_BARS = 80
HISTOGRAM_TAIL = 0.001
OUTSIDE_NOTE_PERCENT = 0.05  # a panel notes the samples outside its view from this share on
MAX_WEIGHT_TILES = 64
WEIGHT_TILE_COLUMNS = 8
DPI = 110

PREDICTION_METHODS = ("goodness", "softmax")
SPLIT_STYLES = {"test": "-", "valid": "--"}
SIDE_LABELS = {"pos": "positive (true label)", "neg": "negative (wrong label)"}
SIDE_COLORS = {"pos": "tab:blue", "neg": "tab:red"}


class FigureUnavailable(Exception):
    """A figure that this run cannot provide, such as weight tiles of a network not on images."""


@dataclass
class RunData:
    """Contents of one run directory that the figures read.

    Attributes:
        run_dir: the folder.
        config: its resolved configuration.
        records: the lines of `metrics.jsonl`, oldest first.
        histograms: the lines of `goodness_histograms.jsonl`, oldest first (empty for runs
            made before the loop recorded them).
    """

    run_dir: Path
    config: RunConfig
    records: list[dict]
    histograms: list[dict]

    @property
    def label(self) -> str:
        """Recipe and folder name, for figure titles."""
        return f"{self.config.name} ({self.run_dir.name})"


@dataclass
class PlotResult:
    """Files written by `plot_run`, and the figures left out with the reason for each."""

    written: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def load_run_data(run_dir: str | Path) -> RunData:
    """Read the configuration, metrics and histograms of a run directory.

    Raises:
        UsageError: the folder contains no run, or no epoch has finished yet.
    """
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    records = MetricsLog(run_dir / METRICS_FILE).read()
    if not records:
        raise UsageError(f"{run_dir} has no finished epoch in {METRICS_FILE} yet; plot it after the first epoch")
    histograms = MetricsLog(run_dir / HISTOGRAMS_FILE).read()
    return RunData(run_dir=run_dir, config=config, records=records, histograms=histograms)


def _figure_class() -> type:
    try:
        import matplotlib  # noqa: F401  (the top package first, so a missing one always fails here)
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError(MISSING_MATPLOTLIB) from None
    return Figure


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    """Epochs and values of `key` in the records that contain it (`"nan"` strings become NaN)."""
    epochs, values = [], []
    for record in records:
        if key in record:
            epochs.append(int(record["epoch"]))
            values.append(float(record[key]))
    return epochs, values


def _layer_numbers(records: list[dict], pattern: str) -> list[int]:
    """Sorted layer numbers N of the keys that match `pattern` with N as its group."""
    regex = re.compile(pattern)
    numbers = {int(match.group(1)) for record in records for key in record if (match := regex.fullmatch(key))}
    return sorted(numbers)


def _thresholds(config: RunConfig) -> list[float]:
    model = config.model
    if model.threshold is not None:
        return [float(model.threshold)] * len(model.hidden)
    return [default_threshold(model.goodness, width) for width in model.hidden]


def _integer_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _use_log_y(ax: Any, values: list[float], zero_floor: float | None = None) -> None:
    """Put the y-axis on a log scale with plain numbers when the values span a decade or more.

    With `zero_floor`, values of exactly 0 are allowed too: the axis becomes symmetric-log,
    linear below `zero_floor` and logarithmic above it. Negative or non-finite values, or a
    span under a decade, keep the linear axis.
    """
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    positive = [v for v in values if v > 0]
    if not positive or not all(math.isfinite(v) and v >= 0 for v in values):
        return
    span = max(positive) / min(positive) if len(positive) == len(values) else math.inf
    if span < 10:
        return
    if len(positive) == len(values):
        ax.set_yscale("log")
    elif zero_floor is not None:
        ax.set_yscale("symlog", linthresh=zero_floor, linscale=0.3)
    else:
        return
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    # Label the ticks between powers of ten only when fewer than two decades are in view.
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%g") if span < 100 else NullFormatter())


# -- learning curves ---------------------------------------------------------------------------


def learning_curves_figure(run: RunData) -> Any:
    """Draw per-layer loss, mean goodness and the error of every prediction method per epoch.

    Returns:
        A matplotlib `Figure` with three panels.

    Raises:
        UsageError: matplotlib is not installed.
        FigureUnavailable: the metrics contain no layer loss.
    """
    Figure = _figure_class()
    records = run.records
    layers = _layer_numbers(records, r"layer(\d+)/loss")
    if not layers:
        raise FigureUnavailable(f"{METRICS_FILE} contains no layer loss")
    fig = Figure(figsize=(17, 5), layout="constrained")
    loss_ax, goodness_ax, error_ax = fig.subplots(1, 3)
    fig.suptitle(f"Learning curves of {run.label}")

    losses: list[float] = []
    for layer in layers:
        epochs, values = _series(records, f"layer{layer}/loss")
        loss_ax.plot(epochs, values, marker="o", markersize=3, label=f"layer {layer}")
        losses += values
    _use_log_y(loss_ax, losses)
    loss_ax.set(title="Layer-local loss on the training set", xlabel="epoch",
                ylabel="loss per sample pair (nats)")
    loss_ax.legend()
    for ax in (loss_ax, goodness_ax, error_ax):
        _integer_epochs(ax)

    _draw_mean_goodness(goodness_ax, run, layers)
    _draw_errors(error_ax, records)
    return fig


def _draw_mean_goodness(ax: Any, run: RunData, layers: list[int]) -> None:
    thresholds = _thresholds(run.config)
    colors = [f"C{i}" for i in range(10)]
    ratios: list[float] = []
    for layer in layers:
        threshold = thresholds[layer - 1] if layer <= len(thresholds) else 1.0
        color = colors[(layer - 1) % len(colors)]
        for side, style in (("pos", "-"), ("neg", "--")):
            epochs, values = _series(run.records, f"layer{layer}/goodness_{side}")
            values = [v / threshold for v in values]
            ratios += values
            name = "positive" if side == "pos" else "negative"
            ax.plot(epochs, values, style, color=color, marker="o", markersize=3, label=f"layer {layer} {name}")
    ax.axhline(1.0, color="grey", linestyle=":", label="threshold")
    _use_log_y(ax, ratios)
    ax.set(title="Mean goodness on the training set", xlabel="epoch",
           ylabel="mean goodness / threshold (ratio)")
    ax.legend(fontsize="small")


def _draw_errors(ax: Any, records: list[dict]) -> None:
    errors: list[float] = []
    for color, method in zip(("C0", "C1"), PREDICTION_METHODS):
        for split, style in SPLIT_STYLES.items():
            epochs, values = _series(records, f"{split}/error_{method}")
            if epochs:
                ax.plot(epochs, values, style, color=color, marker="o", markersize=3, label=f"{split}, {method}")
                errors += values
    epochs, values = _series(records, "train/error_softmax")
    if epochs:
        ax.plot(epochs, values, ":", color="C1", marker=".", label="train, softmax (during the epoch)")
        errors += values
    _use_log_y(ax, errors, zero_floor=0.1)  # a training error can reach 0 %
    ax.set(title="Prediction error", xlabel="epoch", ylabel="error (%)")
    if errors:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no evaluation yet", ha="center", va="center", transform=ax.transAxes)
        ax.legend(handles=[], title="no errors recorded")


# -- goodness histograms -----------------------------------------------------------------------


def histogram_epochs(histograms: list[dict], count: int = MAX_HISTOGRAM_EPOCHS) -> list[int]:
    """Pick up to `count` recorded epochs, spread evenly, always including the first and last."""
    epochs = [int(record["epoch"]) for record in histograms]
    if len(epochs) <= count:
        return epochs
    picks = np.linspace(0, len(epochs) - 1, count).round().astype(int)
    return [epochs[i] for i in sorted(set(picks.tolist()))]


def goodness_histograms_figure(run: RunData, epochs: list[int] | None = None) -> Any:
    """Draw positive against negative goodness for every layer at a few epochs.

    Args:
        run: the run.
        epochs: the epochs to show; default `histogram_epochs(run.histograms)`.

    Returns:
        A matplotlib `Figure` with one row per layer and one column per epoch.

    Raises:
        UsageError: matplotlib is not installed, `epochs` is empty, or it lists an epoch
            without a histogram.
        FigureUnavailable: the run has no recorded histograms.
    """
    Figure = _figure_class()
    if not run.histograms:
        raise FigureUnavailable(f"the run has no {HISTOGRAMS_FILE}; it was trained before histograms were recorded")
    by_epoch = {int(record["epoch"]): record for record in run.histograms}
    epochs = histogram_epochs(run.histograms) if epochs is None else epochs
    if not epochs:
        raise UsageError("goodness_histograms_figure needs at least one epoch to show")
    missing = [e for e in epochs if e not in by_epoch]
    if missing:
        raise UsageError(f"no goodness histogram for epochs {missing}; recorded epochs are {sorted(by_epoch)}")
    layers = sorted({int(layer) for record in run.histograms for layer in record["layers"]})

    fig = Figure(figsize=(3.8 * len(epochs) + 1, 2.6 * len(layers) + 1.2), layout="constrained")
    grid = fig.subplots(len(layers), len(epochs), squeeze=False, sharex=True)
    fig.suptitle(f"Goodness of training samples, positive against negative: {run.label}")
    fig.supylabel("training samples per bar (%)")
    shown = [by_epoch[epoch] for epoch in epochs]
    sides = [entry[side] for record in shown for entry in record["layers"].values() for side in SIDES]
    view = histogram_view(sides, shown[0]["bins"])
    scale = ", log scale" if _log_scale_view(view, shown[0]["bins"]) else ""
    fig.supxlabel(f"goodness / threshold (ratio{scale})")
    for row, layer in enumerate(layers):
        for column, epoch in enumerate(epochs):
            _draw_histogram(grid[row][column], by_epoch[epoch], layer, view)
            grid[row][column].set_title(f"layer {layer}, epoch {epoch}", fontsize="medium")
    grid[0][0].legend(fontsize="small", loc="upper left")
    return fig


def histogram_view(sides: list[dict], bins: dict) -> tuple[int, int, int]:
    """Choose the slots to show and how many adjacent bins to merge into one bar.

    The view spans the bins that contain all but `HISTOGRAM_TAIL` of each side's samples at
    either end, over every histogram given, plus a margin. Bins are merged so that about
    `HISTOGRAM_BARS` bars cover it.

    Args:
        sides: stored histograms of one side each (positive or negative), as in the file.
        bins: the `bins` entry of their records.

    Returns:
        `(first, last, merge)`: the first and last bin slot shown (1 to `bins["count"]`) and
        the number of bins per bar.
    """
    count = bins["count"]
    first, last = count, 1
    for side in sides:
        inner = full_counts(side, bins)[1:-1]
        total = inner.sum()
        if total == 0:
            continue
        cumulative = np.cumsum(inner) / total
        first = min(first, int(np.searchsorted(cumulative, HISTOGRAM_TAIL)) + 1)
        last = max(last, int(np.searchsorted(cumulative, 1.0 - HISTOGRAM_TAIL)) + 1)
    if first > last:
        first, last = 1, count
    margin = max(2, (last - first) // 10)
    first, last = max(1, first - margin), min(count, last + margin)
    merge = max(1, math.ceil((last - first + 1) / HISTOGRAM_BARS))
    return first, last, merge


def _draw_histogram(ax: Any, record: dict, layer: int, view: tuple[int, int, int]) -> None:
    entry = record["layers"].get(str(layer))
    bins = record["bins"]
    first, last, merge = view
    bars = math.ceil((last - first + 1) / merge)
    step = (bins["log10_ratio_max"] - bins["log10_ratio_min"]) / bins["count"]
    # Slot s covers (edge s - 1, edge s]; the last bar may reach past the top edge, where the
    # padded counts are zero.
    edges = 10.0 ** (bins["log10_ratio_min"] + step * (first - 1 + merge * np.arange(bars + 1)))
    if _log_scale_view(view, bins):
        _log_x_plain(ax, decades=math.log10(edges[-1] / edges[0]))
    ax.set_xlim(edges[0], edges[-1])
    if entry is None:
        ax.text(0.5, 0.5, "layer not run in this epoch", ha="center", va="center", transform=ax.transAxes)
        return
    outside = []
    for side in SIDES:
        counts = full_counts(entry[side], bins).astype(float)
        percent = 100.0 * counts / max(counts.sum(), 1.0)
        shown = np.zeros(bars * merge)
        shown[: last - first + 1] = percent[first : last + 1]
        ax.stairs(shown.reshape(bars, merge).sum(axis=1), edges, fill=True, alpha=0.45,
                  color=SIDE_COLORS[side], label=SIDE_LABELS[side])
        below, above = percent[:first].sum(), percent[last + 1 :].sum()
        if below >= OUTSIDE_NOTE_PERCENT or above >= OUTSIDE_NOTE_PERCENT:
            outside.append(f"{side}: {below:.1f} % left, {above:.1f} % right of view")
    ax.axvline(1.0, color="black", linestyle=":", label="threshold")
    if outside:
        ax.text(0.98, 0.97, "\n".join(outside), ha="right", va="top", fontsize="x-small", transform=ax.transAxes)


def _log_scale_view(view: tuple[int, int, int], bins: dict) -> bool:
    """Return True when the view spans a decade or more; a narrower one reads better on a linear axis."""
    first, last, _ = view
    step = (bins["log10_ratio_max"] - bins["log10_ratio_min"]) / bins["count"]
    return (last - first + 1) * step >= 1.0


def _log_x_plain(ax: Any, decades: float) -> None:
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    # Ticks at 1, 2 and 5 times each power of ten label a view of a few decades; wider views
    # get the powers of ten alone.
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades <= 3 else (1.0,)))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())


# -- per-layer accuracy ------------------------------------------------------------------------


def layer_accuracy_figure(run: RunData) -> Any:
    """Draw the accuracy of each layer alone, and of each prediction method, per epoch.

    A layer's own accuracy comes from the argmax over labels of that layer's goodness.

    Returns:
        A matplotlib `Figure` with one panel.

    Raises:
        UsageError: matplotlib is not installed.
        FigureUnavailable: no evaluation with per-layer errors has run yet.
    """
    Figure = _figure_class()
    records = run.records
    layers = _layer_numbers(records, r"(?:valid|test)/error_layer(\d+)")
    if not layers:
        raise FigureUnavailable(f"{METRICS_FILE} contains no per-layer error yet (no evaluation has run)")
    fig = Figure(figsize=(9, 5.5), layout="constrained")
    ax = fig.subplots()
    for layer in layers:
        color = f"C{(layer - 1) % 10}"
        for split, style in SPLIT_STYLES.items():
            epochs, errors = _series(records, f"{split}/error_layer{layer}")
            if epochs:
                ax.plot(epochs, [100.0 - e for e in errors], style, color=color, marker="o", markersize=3,
                        label=f"layer {layer} alone, {split}")
    for method, color in zip(PREDICTION_METHODS, ("black", "grey")):
        epochs, errors = _series(records, f"test/error_{method}")
        if epochs:
            ax.plot(epochs, [100.0 - e for e in errors], "-", color=color, linewidth=2.2, marker="s",
                    markersize=3, label=f"network by {method}, test")
    ax.set(title=f"Accuracy of each layer's goodness alone: {run.label}", xlabel="epoch", ylabel="accuracy (%)")
    ax.legend(fontsize="small", ncols=2)
    _integer_epochs(ax)
    return fig


# -- first-layer weights -----------------------------------------------------------------------


def _image_shape(run: RunData, in_features: int) -> tuple[int, int, int]:
    info = DATASETS.get(run.config.data.dataset)
    if info is not None and math.prod(info.image_shape) == in_features:
        return info.image_shape
    side = math.isqrt(in_features)
    if side * side == in_features:
        return (1, side, side)
    raise FigureUnavailable(f"the first layer has {in_features} inputs, which is not an image of a known shape")


def first_layer_weights(run_dir: Path) -> np.ndarray:
    """Read the first block's weight matrix `(units, in_features)` from the run's checkpoint.

    Raises:
        UsageError: the checkpoint is unreadable.
        FigureUnavailable: the checkpoint is missing, or the first block's weight is not a
            2-D matrix.
    """
    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.is_file():
        raise FigureUnavailable(f"no {CHECKPOINT_FILE} in {run_dir}, so no weights to show")
    state = load_checkpoint(path)
    weight = state["network"].get("blocks.0.module.weight")
    if weight is None or weight.dim() != 2:
        shape = None if weight is None else tuple(weight.shape)
        raise FigureUnavailable(f"the first block has no fully connected weight matrix (found {shape})")
    return weight.float().numpy()


def first_layer_weights_figure(run: RunData, tiles: int = MAX_WEIGHT_TILES) -> Any:
    """Draw the incoming weights of the first layer's first units as image tiles.

    Returns:
        A matplotlib `Figure` with one tile per unit on a shared colour scale.

    Raises:
        UsageError: matplotlib is not installed, or the checkpoint cannot be read.
        FigureUnavailable: no checkpoint yet, or the first layer is not fully connected on
            images.
    """
    Figure = _figure_class()
    weight = first_layer_weights(run.run_dir)
    units, in_features = weight.shape
    channels, height, width = _image_shape(run, in_features)
    count = min(tiles, units)
    columns = min(WEIGHT_TILE_COLUMNS, count)
    rows = math.ceil(count / columns)
    unit_weights = weight[:count].reshape(count, channels, height, width)  # (units, channels, height, width)
    # One scale for all tiles, clipped at the 99th percentile so a few large weights do not
    # wash out the rest.
    scale = float(np.percentile(np.abs(unit_weights), 99)) or 1.0

    fig = Figure(figsize=(1.35 * columns + 1.6, 1.35 * rows + 1.0), layout="constrained")
    grid = fig.subplots(rows, columns, squeeze=False)
    image = None
    for index, ax in enumerate(grid.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index >= count:
            ax.set_axis_off()
            continue
        if channels == 1:
            image = ax.imshow(unit_weights[index, 0], cmap="RdBu_r", vmin=-scale, vmax=scale)
        else:
            rgb = np.clip(unit_weights[index].transpose(1, 2, 0) / (2 * scale) + 0.5, 0.0, 1.0)  # (height, width, 3)
            ax.imshow(rgb)
        ax.set_title(f"unit {index + 1}", fontsize="x-small")
    fig.suptitle(
        f"Incoming weights of the first {count} of {units} first-layer units: {run.label}\n"
        f"({height} x {width} pixels; the first {_label_pixels(run)} pixels of the top row carry the label)",
        fontsize="medium",
    )
    fig.supxlabel("image column (pixels)")
    fig.supylabel("image row (pixels)")
    if image is not None:
        fig.colorbar(image, ax=grid, shrink=0.6, label="weight from the pixel to the unit")
    else:
        fig.text(0.99, 0.01, f"mid grey = 0, full colour = +/-{scale:.3g}", ha="right", fontsize="small")
    return fig


def _label_pixels(run: RunData) -> int:
    info = DATASETS.get(run.config.data.dataset)
    return info.num_classes if info is not None else 10


# -- all figures -------------------------------------------------------------------------------

FIGURE_FUNCTIONS = {
    "learning_curves": learning_curves_figure,
    "goodness_histograms": goodness_histograms_figure,
    "layer_accuracy": layer_accuracy_figure,
    "first_layer_weights": first_layer_weights_figure,
}


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> PlotResult:
    """Write every figure that the run can provide as `NAME.png` into `out_dir`.

    Args:
        run_dir: a run directory written by `forwardforward train`.
        out_dir: where the PNG files go; default `RUN_DIR/plots`. Created when missing.

    Returns:
        The paths written by figure name, and the figures skipped with the reason for each.

    Raises:
        UsageError: matplotlib is not installed, the folder contains no run or no finished
            epoch, or `out_dir` is a file.
    """
    _figure_class()
    run = load_run_data(run_dir)
    out = Path(out_dir) if out_dir is not None else run.run_dir / DEFAULT_PLOT_DIR
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder for the PNG files")
    out.mkdir(parents=True, exist_ok=True)

    result = PlotResult()
    if getattr(run.config, "variant", "ff") == "nca":
        from .variants.nca_frames import FRAMES_DIR, write_prediction_frames

        for index, path in enumerate(write_prediction_frames(run.run_dir, out / FRAMES_DIR)):
            result.written[f"nca_frame_step{index + 1}"] = path
    for name, draw in FIGURE_FUNCTIONS.items():
        try:
            fig = draw(run)
        except FigureUnavailable as exc:
            result.skipped[name] = str(exc)
            continue
        path = out / f"{name}.png"
        fig.savefig(path, dpi=DPI)
        result.written[name] = path
    return result
