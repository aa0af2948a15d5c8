"""Print a markdown table of VFF-Net run directories: the switches, final test errors and time.

Usage: python -m benchmarks.vff_table RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def table_row(run_dir: Path) -> str:
    """Return one markdown row: run, method, the three switches, test errors, epochs and time."""
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    last = records[-1]
    model = config["model"]
    train_s = sum(r["epoch_time_s"] for r in records)
    eval_s = sum(r.get("eval_time_s", 0.0) for r in records)
    goodness = last.get("test/error_goodness")
    cells = [
        f"`{run_dir.name}`",
        config.get("method", "ff"),
        model["labels"],
        f"{model['cosine_weight']:g}",
        "on" if model["grouping"] else "off",
        "-" if goodness is None else f"{goodness:.2f}",
        f"{last['test/error_softmax']:.2f}",
        str(last["epoch"]),
        f"{train_s:.0f} + {eval_s:.0f}",
        str(info.get("git_commit", "?"))[:7],
    ]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str]) -> int:
    """Print the table for the run directories given on the command line."""
    if not argv:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    print("| run | method | labels | cosine weight | grouping | test error by goodness (%) | "
          "test error by softmax (%) | epochs | train + eval time (s) | commit |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for run_dir in argv:
        print(table_row(Path(run_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
