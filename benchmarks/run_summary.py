"""Print a markdown summary of finished run directories: final errors, wall time, machine.

Usage: python -m benchmarks.run_summary RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def summarize(run_dir: Path) -> str:
    """Return markdown lines for one run: its settings, final errors and timing."""
    config = json.loads((run_dir / "config.json").read_text())
    info = json.loads((run_dir / "run.json").read_text())
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    if not records:
        return f"{run_dir}: no completed epoch"
    last = records[-1]
    train_s = sum(r["epoch_time_s"] for r in records)
    eval_s = sum(r.get("eval_time_s", 0.0) for r in records)
    lines = [
        f"run `{run_dir}`: recipe `{config['name']}`, hidden {config['model']['hidden']}, "
        f"{last['epoch']} epochs, commit {info.get('git_commit')}, torch {info['torch_version']}, "
        f"{info['device']}, {info['num_threads']} threads",
        "",
        "| split | error by goodness (%) | error by softmax (%) | " + " | ".join(
            f"layer {i} alone (%)" for i in range(1, len(config['model']['hidden']) + 1)) + " |",
        "|---|---|---|" + "---|" * len(config["model"]["hidden"]),
    ]
    for split in ("valid", "test"):
        if f"{split}/error_goodness" not in last:
            continue
        layers = " | ".join(
            f"{last[f'{split}/error_layer{i}']:.2f}" for i in range(1, len(config["model"]["hidden"]) + 1)
        )
        lines.append(
            f"| {split} | {last[f'{split}/error_goodness']:.2f} | {last.get(f'{split}/error_softmax', float('nan')):.2f} | {layers} |"
        )
    lines += [
        "",
        f"training time {train_s / 60:.1f} min ({train_s / len(records):.1f} s per epoch, median "
        f"{sorted(r['samples_per_s'] for r in records)[len(records) // 2]:.0f} samples/s), "
        f"evaluation time {eval_s / 60:.1f} min",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Print one summary per run directory given on the command line."""
    if not argv:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    for run_dir in argv:
        print(summarize(Path(run_dir)))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
