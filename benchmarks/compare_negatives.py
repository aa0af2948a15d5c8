"""Train the `ff-negatives-mnist` recipe with three kinds of negatives and print a table.

Usage: python -m benchmarks.compare_negatives OUT_DIR [--data-dir DIR] [--set KEY=VALUE ...]

The kinds are wrong labels (`random`), corrupted images (`corrupt`) and images from the
adversarial generator (`adversarial`). Each run goes to OUT_DIR/KIND and resumes from its
checkpoint when that folder already contains a run. The table lists the final test errors of
the softmax read-out and of goodness prediction, with the training time of each run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from forwardforward.config import load_config
from forwardforward.training import train

KINDS = ("random", "corrupt", "adversarial")


def run_kind(kind: str, out_dir: Path, data_dir: str | None, overrides: list[str]) -> dict:
    """Train (or finish) the run of one kind of negatives and return its last metrics record."""
    run_dir = out_dir / kind
    if (run_dir / "checkpoint.pt").exists():
        result = train(resume=run_dir, data_dir=data_dir, progress=False)
    else:
        config = load_config("ff-negatives-mnist", [*overrides, f"negatives.kind='{kind}'"])
        result = train(config, out_dir=run_dir, data_dir=data_dir, progress=False)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    return {**result.final, "train_time_s": sum(r["epoch_time_s"] for r in records)}


def main(argv: list[str]) -> int:
    """Run every kind and print a markdown table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare_negatives", description=__doc__)
    parser.add_argument("out_dir", help="folder that receives one run directory per kind")
    parser.add_argument("--data-dir", default=None, help="data folder (default: $FORWARDFORWARD_DATA)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override applied to every run")
    args = parser.parse_args(argv)
    rows = ["| negatives | test error, softmax (%) | test error, goodness (%) | training time (s) |",
            "|---|---|---|---|"]
    for kind in KINDS:
        final = run_kind(kind, Path(args.out_dir), args.data_dir, args.overrides)
        rows.append(f"| {kind} | {final['test/error_softmax']:.2f} | {final['test/error_goodness']:.2f} | "
                    f"{final['train_time_s']:.0f} |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
