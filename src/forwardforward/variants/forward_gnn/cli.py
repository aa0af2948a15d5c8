"""`forwardforward graph`: train forward-learning GNNs on Planetoid graphs from the command line.

A run directory contains `config.json` (the command's settings), `run.json` (versions, commit,
threads), `results.jsonl` (one line per finished seed) and `metrics.jsonl` (one line per
validation check). Running the same command with the same `--out` again skips the seeds that
are already in `results.jsonl`, so an interrupted run resumes after its last finished seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from ... import __version__
from ...errors import UsageError
from ...training.metrics import MetricsLog

RESULTS_FILE = "results.jsonl"


def add_graph_command(subparsers) -> None:
    """Register the `graph` subcommand on the top-level parser's subparsers."""
    from .experiment import LINK_METHODS, NODE_METHODS

    graph = subparsers.add_parser(
        "graph", help="train forward-learning GNNs (needs the graph extra)",
        description="Train a forward-learning or backprop GNN on a Planetoid graph, over several seeds.",
    )
    graph.add_argument("task", choices=("node", "link"), help="node classification or link prediction")
    graph.add_argument("--dataset", default="cora", choices=("cora", "citeseer", "pubmed"),
                       help="Planetoid graph under DATA_DIR/planetoid (default: cora)")
    graph.add_argument("--method", default=None,
                       help=f"node: {', '.join(NODE_METHODS)} (default single-forward); "
                            f"link: {', '.join(LINK_METHODS)} (default dot-product)")
    graph.add_argument("--conv", default="gcn", choices=("gcn", "sage", "gat"), help="GNN layer (default: gcn)")
    graph.add_argument("--layers", type=int, default=2, help="number of GNN layers (default: 2)")
    graph.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2,3,4 (default: 0)")
    graph.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a GraphConfig field, e.g. --set hidden=64 --set lr=0.005")
    graph.add_argument("--data-dir", default=None,
                       help="data folder containing planetoid/ (default: $FORWARDFORWARD_DATA, then the cache folder)")
    graph.add_argument("--out", default=None, help="run directory (default: runs/graph-TASK-DATASET-METHOD-TIME)")
    graph.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    graph.add_argument("--quiet", action="store_true", help="no progress bars")


def parse_overrides(overrides: list[str]):
    """Build a `GraphConfig` from `KEY=VALUE` strings, converting each value to the field's type.

    Raises:
        UsageError: an unknown key, a missing `=`, a value of the wrong type, or an invalid setting.
    """
    from .layers import GraphConfig

    fields = {f.name: f for f in dataclasses.fields(GraphConfig)}
    values = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        key = key.strip()
        if key not in fields:
            raise UsageError(f"unknown graph setting {key!r}; choose one of {', '.join(fields)}")
        default = getattr(GraphConfig(), key)
        try:
            if text.strip().lower() == "none" and key == "threshold":
                values[key] = None
            elif isinstance(default, bool):
                values[key] = text.strip().lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                values[key] = int(text)
            elif isinstance(default, float) or key == "threshold":
                values[key] = float(text)
            else:
                values[key] = text.strip().strip("'\"")
        except ValueError:
            raise UsageError(f"invalid value {text!r} for {key} (expected {type(default).__name__})") from None
    return GraphConfig(**values)


def parse_seeds(text: str) -> list[int]:
    """Parse `0,1,2` into `[0, 1, 2]`.

    Raises:
        UsageError: an entry is not an integer, or no seed is given.
    """
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--seeds expects comma-separated integers, got {text!r}") from None
    if not seeds:
        raise UsageError("--seeds needs at least one seed")
    return seeds


def run_record(task: str, dataset: str, method: str, config, num_layers: int, seed: int, fit) -> dict:
    """Describe one finished run as a JSON-ready dict with one entry per depth."""
    return {
        "task": task, "dataset": dataset, "method": method, "conv": config.conv,
        "layers": num_layers, "seed": seed, "train_time_s": fit.train_time_s,
        "depths": [dataclasses.asdict(d) for d in fit.depths],
    }


def run_info() -> dict:
    """Versions, commit and threads of this process, for `run.json` and benchmark records."""
    from ...training.run import git_commit

    return {
        "forwardforward_version": __version__, "git_commit": git_commit(),
        "torch_version": torch.__version__, "python_version": platform.python_version(),
        "num_threads": torch.get_num_threads(), "device": "cpu",
    }


def summarize(records: list[dict], key: str = "test") -> dict[int, tuple[float, float, int]]:
    """Mean, standard deviation (0 for one seed) and count of a score per depth over records."""
    by_depth: dict[int, list[float]] = {}
    for record in records:
        for row in record["depths"]:
            by_depth.setdefault(row["depth"], []).append(row[key])
    return {depth: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v))
            for depth, v in sorted(by_depth.items())}


def _prepare_run_dir(out: Path, settings: dict) -> list[dict]:
    """Create `out`, or check that it contains a run with the same settings; return its finished records."""
    config_path = out / "config.json"
    if config_path.is_file():
        saved = json.loads(config_path.read_text(encoding="utf-8"))
        if saved != settings:
            raise UsageError(f"{out} contains a run with other settings; choose another --out")
        return MetricsLog(out / RESULTS_FILE).read()
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not a graph run directory; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    (out / "run.json").write_text(json.dumps({**run_info(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
                                             indent=2) + "\n", encoding="utf-8")
    return []


def run_graph_command(args: argparse.Namespace) -> int:
    """Run `forwardforward graph` and print accuracy or ROC-AUC per depth.

    Raises:
        UsageError: a bad option or setting, or PyTorch Geometric is missing.
        DataError: missing or unreadable Planetoid files.
        TrainingError: a loss became NaN or infinite.
    """
    from ...data.planetoid import load_planetoid
    from .experiment import LINK_METHODS, NODE_METHODS, link_task, node_task, run_link_method, run_node_method

    methods = NODE_METHODS if args.task == "node" else LINK_METHODS
    method = args.method or ("single-forward" if args.task == "node" else "dot-product")
    if method not in methods:
        raise UsageError(f"unknown {args.task} method {method!r}; choose one of {', '.join(methods)}")
    if args.layers < 1:
        raise UsageError(f"--layers must be at least 1, got {args.layers}")
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    config = parse_overrides([f"conv={args.conv}", *args.overrides])
    seeds = parse_seeds(args.seeds)
    data = load_planetoid(args.dataset, args.data_dir)

    settings = {"task": args.task, "dataset": args.dataset, "method": method, "layers": args.layers,
                "config": dataclasses.asdict(config)}
    out = Path(args.out) if args.out else Path("runs") / f"graph-{args.task}-{args.dataset}-{method}-{time.strftime('%Y%m%d-%H%M%S')}"
    done = _prepare_run_dir(out, settings)
    finished = {record["seed"] for record in done}
    results, metrics = MetricsLog(out / RESULTS_FILE), MetricsLog(out / "metrics.jsonl")
    for seed in seeds:
        if seed in finished:
            continue
        log = lambda record, seed=seed: metrics.append({"seed": seed, **record})  # noqa: E731
        if args.task == "node":
            fit = run_node_method(method, node_task(data, seed), config, args.layers, seed, not args.quiet, log)
        else:
            fit = run_link_method(method, link_task(data, seed), config, args.layers, seed, not args.quiet, log)
        record = run_record(args.task, args.dataset, method, config, args.layers, seed, fit)
        results.append(record)
        done.append(record)

    metric = "accuracy (%)" if args.task == "node" else "ROC-AUC (%)"
    chosen = [r for r in done if r["seed"] in seeds]
    print(f"run directory: {out}")
    print(f"{args.dataset} {args.task} {method} {config.conv}, seeds {','.join(map(str, seeds))}: test {metric}")
    for depth, (mean, std, count) in summarize(chosen).items():
        seeds_text = "1 seed" if count == 1 else f"{count} seeds"
        print(f"  {depth} layer{'s' if depth > 1 else ' '}  {mean:6.2f} +- {std:5.2f}  ({seeds_text})")
    return 0
