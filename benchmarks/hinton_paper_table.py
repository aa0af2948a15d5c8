"""Print the results rows of the shortened paper runs: errors, epochs, wall time and peak memory.

Usage: python -m benchmarks.hinton_paper_table OUT_DIR
OUT_DIR is the folder given to benchmarks/hinton_paper_shortened.sh. Each FF run NAME is paired
with NAME-backprop, or for CIFAR-10 with the backprop run of the same depth.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def read_time_file(path: Path) -> tuple[float, float]:
    """Return wall time in seconds and peak resident memory in GB from a GNU `time -v` file."""
    text = path.read_text()
    elapsed = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    seconds = 0.0
    for part in elapsed.split(":"):
        seconds = seconds * 60 + float(part)
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    return seconds, peak_kb / 1e6


def summarize(out_dir: Path, name: str) -> dict:
    """Return the final test errors, epochs, training size, commit, wall time and peak memory of a run."""
    run_dir = out_dir / name
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    config = json.loads((run_dir / "config.json").read_text())
    info = json.loads((run_dir / "run.json").read_text())
    wall_s, peak_gb = read_time_file(out_dir / f"{name}.time")
    last = records[-1]
    return {
        "goodness": last.get("test/error_goodness"),
        "softmax": last.get("test/error_softmax"),
        "epochs": last["epoch"],
        "train_samples": round(last["samples_per_s"] * last["epoch_time_s"]),
        "test_samples": config["data"]["eval_limit"],
        "commit": (info.get("git_commit") or "unknown")[:7],
        "wall_s": wall_s,
        "peak_gb": peak_gb,
    }


def format_error(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main(out_dir: str) -> None:
    """Print one markdown row per FF run found in `out_dir`."""
    folder = Path(out_dir)
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.endswith("-backprop"))
    print("| run | FF test error: goodness / softmax | backprop test error | epochs | training images | "
          "test images | wall time FF / backprop | peak memory FF / backprop | commit |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        if not (folder / name / "metrics.jsonl").is_file() or not (folder / f"{name}.time").is_file():
            print(f"| `{name}` | not finished | | | | | | | |")
            continue
        ff = summarize(folder, name)
        baseline_name = re.sub(r"-(max|min)ssq$", "", name) + "-backprop"
        finished = (folder / baseline_name / "metrics.jsonl").is_file() and (folder / f"{baseline_name}.time").is_file()
        bp = summarize(folder, baseline_name) if finished else None
        print(
            f"| `{name}` | {format_error(ff['goodness'])} / {format_error(ff['softmax'])} | "
            f"{format_error(bp['softmax']) if bp else '-'} | {ff['epochs']} | {ff['train_samples']:,} | "
            f"{ff['test_samples'] or 10000:,} | {ff['wall_s']:.0f} s / {bp['wall_s'] if bp else float('nan'):.0f} s | "
            f"{ff['peak_gb']:.2f} / {bp['peak_gb'] if bp else float('nan'):.2f} GB | {ff['commit']} |"
        )


if __name__ == "__main__":
    main(sys.argv[1])
