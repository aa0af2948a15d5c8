"""Print the modelled efficiency of the layer pipeline for 4 to 64 stages, and for a measured run.

    python -m benchmarks.pipeline_model
    python -m benchmarks.pipeline_model --check RUN_DIR [RUN_DIR ...]

The table is for a network of one 2000-unit layer per stage on MNIST-sized inputs, batch 100,
500 batches per epoch and a linear read-out, with hard negatives from the read-out (the shipped
recipes) and with random negatives. Communication time is left out; its volume is the byte
columns. With `--check`, each run directory of a pipeline job is compared with the model of its
own layers and stage split: the measured bubble fraction (from `metrics.jsonl`, median over
epochs after the first) beside the modelled one.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from forwardforward.distributed.efficiency import estimate_pipeline

INPUT_FEATURES = 784
WIDTH = 2000
BATCH = 100
BATCHES = 500
STAGE_COUNTS = (4, 8, 16, 32, 64)


def _model_row(stages: int, negatives: str) -> str:
    widths = [WIDTH] * stages
    params = [(INPUT_FEATURES if i == 0 else WIDTH) * WIDTH + WIDTH for i in range(stages)]
    bounds = [(s, s + 1) for s in range(stages)]
    estimate = estimate_pipeline(params, widths, bounds, BATCH, BATCHES, negatives=negatives)
    return (
        f"| {stages} | {negatives} | {estimate.bubble_fraction:.3f} | {estimate.speedup:.2f} | "
        f"{estimate.bytes_per_batch / 1e6:.2f} | {estimate.max_bytes_into_rank / 1e6:.2f} |"
    )


def print_model_table() -> None:
    """Print the bubble fraction, speedup and bytes per batch for 4 to 64 stages."""
    print("| stages | negatives | bubble fraction | speedup over 1 process | MB per batch | MB into busiest rank |")
    print("|---|---|---|---|---|---|")
    for negatives in ("hard", "random"):
        for stages in STAGE_COUNTS:
            print(_model_row(stages, negatives))


def check_run(run_dir: Path) -> str:
    """Compare a pipeline run's measured bubble fraction with the model of its layout."""
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    bounds = [tuple(b) for b in info["parallel"]["bounds"]]
    widths = list(config["model"]["hidden"])
    fan_in = [INPUT_FEATURES, *widths[:-1]]
    params = [i * w + w for i, w in zip(fan_in, widths)]
    train = config["train"]
    samples = records[0]["samples_per_s"] * records[0]["epoch_time_s"]
    batches = -(-round(samples) // train["batch_size"])
    estimate = estimate_pipeline(
        params, widths, bounds, train["batch_size"] // info["parallel"]["replicas"], batches,
        readout=config["readout"]["enabled"], skip_first=train["skip_first"],
        negatives=config["negatives"]["kind"], hard_source=config["negatives"]["hard_source"],
    )
    later = records[1:] or records
    measured = statistics.median(r["pipeline/bubble_fraction"] for r in later)
    throughput = statistics.median(r["samples_per_s"] for r in later)
    return (
        f"| {run_dir.name} | {len(bounds)} x {info['parallel']['replicas']} | {measured:.3f} | "
        f"{estimate.bubble_fraction:.3f} | {estimate.speedup:.2f} | {throughput:.0f} |"
    )


def main(argv: list[str] | None = None) -> int:
    """Print the model table, or the check of the given run directories."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", nargs="+", type=Path, metavar="RUN_DIR", help="pipeline run directories")
    args = parser.parse_args(argv)
    if args.check:
        print("| run | stages x replicas | measured bubble | modelled bubble | modelled speedup | samples/s |")
        print("|---|---|---|---|---|---|")
        for run_dir in args.check:
            print(check_run(run_dir))
        return 0
    print_model_table()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
