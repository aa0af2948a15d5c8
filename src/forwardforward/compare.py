"""Compare run directories: the settings that differ, test errors, epochs, time and speed.

Everything comes from the files a run writes (`config.json`, `run.json`, `metrics.jsonl`), so
unfinished runs can be compared too; their epoch column shows how far they got.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

from .config import RunConfig, config_to_dict
from .errors import UsageError
from .training.metrics import MetricsLog
from .training.run import METRICS_FILE, RUN_INFO_FILE, read_run_config

# Settings that name or describe a run rather than change what it computes.
IGNORED_SETTINGS = ("name", "description")
PREFERRED_METHODS = ("goodness", "softmax")
_TEST_ERROR = re.compile(r"test/error_(?!layer\d+$)(\w+)")


def flatten_settings(values: dict, prefix: str = "") -> dict[str, Any]:
    """Flatten nested settings into dotted keys, such as `{"model.hidden": [500, 500]}`."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_settings(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def planned_epochs(config: RunConfig) -> int:
    """Epochs the run will have when finished: the greedy schedule runs `epochs` per layer.

    A config with its own `total_epochs` method gives the count itself (SCFF's sums
    `train.layer_epochs` when it is set). Variants whose training settings have no `schedule` (such as
    the cellular automaton's) run `train.epochs`.
    """
    total_epochs = getattr(config, "total_epochs", None)
    if total_epochs is not None:
        return total_epochs()
    if getattr(config.train, "schedule", None) == "greedy":
        return config.train.epochs * len(config.model.hidden)
    return config.train.epochs


def _methods(records: list[dict]) -> list[str]:
    found = {match.group(1) for record in records for key in record if (match := _TEST_ERROR.fullmatch(key))}
    return [m for m in PREFERRED_METHODS if m in found] + sorted(found - set(PREFERRED_METHODS))


def _test_errors(records: list[dict]) -> dict[str, dict]:
    errors = {}
    for method in _methods(records):
        key = f"test/error_{method}"
        evaluated = [(int(r["epoch"]), float(r[key])) for r in records if key in r]
        best_epoch, best = min(evaluated, key=lambda pair: pair[1])
        final_epoch, final = evaluated[-1]
        errors[method] = {"final": final, "final_epoch": final_epoch, "best": best, "best_epoch": best_epoch}
    return errors


def summarize_run(run_dir: str | Path) -> dict:
    """Summarise one run directory.

    Returns:
        `run_dir`, `recipe`, `settings` (every dotted setting), `epochs` (completed),
        `planned_epochs`, `test_error` (per prediction method: `final` and `best` error in
        percent with their epochs), `wall_time_s` (training plus evaluation time of the
        recorded epochs, without start-up and data loading), `samples_per_s` (median over
        epochs), `git_commit` and `device`. Values the run has not recorded are None.

    Raises:
        UsageError: the folder contains no run.
    """
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    records = MetricsLog(run_dir / METRICS_FILE).read()
    try:
        info = json.loads((run_dir / RUN_INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        info = {}
    settings = flatten_settings(config_to_dict(config))
    timed = [r for r in records if "epoch_time_s" in r]
    return {
        "run_dir": str(run_dir),
        "recipe": config.name,
        "settings": {k: v for k, v in settings.items() if k not in IGNORED_SETTINGS},
        "epochs": int(records[-1]["epoch"]) if records else 0,
        "planned_epochs": planned_epochs(config),
        "test_error": _test_errors(records),
        "wall_time_s": sum(float(r["epoch_time_s"]) + float(r.get("eval_time_s", 0.0)) for r in timed) if timed else None,
        "samples_per_s": statistics.median(float(r["samples_per_s"]) for r in timed) if timed else None,
        "git_commit": info.get("git_commit") if isinstance(info, dict) else None,
        "device": info.get("device") if isinstance(info, dict) else None,
    }


def compare_runs(run_dirs: list[str | Path]) -> dict:
    """Summarise several runs and find the settings in which they differ.

    Returns:
        `{"differing_settings": [dotted keys], "runs": [summaries]}`, where each summary is
        that of `summarize_run` with `settings` cut down to the differing keys.

    Raises:
        UsageError: no run directory was given, or a folder contains no run.
    """
    if not run_dirs:
        raise UsageError("compare needs at least one run directory")
    summaries = [summarize_run(run_dir) for run_dir in run_dirs]
    keys = sorted({key for s in summaries for key in s["settings"]})
    differing = [k for k in keys if len({_setting_text(s, k) for s in summaries}) > 1]
    for summary in summaries:
        summary["settings"] = {k: summary["settings"].get(k) for k in differing}
    return {"differing_settings": differing, "runs": summaries}


def _setting_text(summary: dict, key: str) -> str:
    # A key that one run lacks (a setting added after it ran) counts as a difference.
    settings = summary["settings"]
    return json.dumps(settings[key]) if key in settings else "<unset>"


def _format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_format_value(v) for v in value) + "]"
    return str(value)


def _format_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def format_comparison(comparison: dict) -> str:
    """Render `compare_runs` output as a text table, one row per run (errors in percent)."""
    runs = comparison["runs"]
    differing = comparison["differing_settings"]
    methods = [m for m in PREFERRED_METHODS if any(m in r["test_error"] for r in runs)]
    methods += sorted({m for r in runs for m in r["test_error"]} - set(methods))
    headers = ["run", "recipe", *differing, "epochs"]
    for method in methods:
        headers += [f"{method} final %", f"{method} best %"]
    headers += ["time (s)", "samples/s"]

    rows = []
    for run in runs:
        row = [run["run_dir"], run["recipe"], *(_format_value(run["settings"][k]) for k in differing),
               f"{run['epochs']}/{run['planned_epochs']}"]
        for method in methods:
            error = run["test_error"].get(method)
            if error is None:
                row += ["-", "-"]
            else:
                row += [f"{error['final']:.2f}", f"{error['best']:.2f} (ep {error['best_epoch']})"]
        row.append("-" if run["wall_time_s"] is None else f"{run['wall_time_s']:.1f}")
        row.append("-" if run["samples_per_s"] is None else f"{run['samples_per_s']:.0f}")
        rows.append(row)
    note = "settings that differ: " + (", ".join(differing) if differing else "none")
    return _format_table(headers, rows) + "\n" + note
