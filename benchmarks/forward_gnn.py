"""Benchmark forward learning of GNNs against backprop on Planetoid graphs and print the tables.

Runs a grid of (task, data set, convolution, method, depth, seed) and appends one JSON line per
finished run to `--out`. A second call with the same `--out` skips the runs already there, so an
interrupted benchmark resumes. Greedy methods run once at the largest depth and report every
smaller depth from the same run (the first k layers of a greedy run are exactly a k-layer run,
because every layer draws its weights from a seed of its own). `--table` prints the markdown
tables of docs/results.md from the file.

Usage:
    python -m benchmarks.forward_gnn --data-dir DATA --out results.jsonl [--time-limit-s 840]
    python -m benchmarks.forward_gnn --out results.jsonl --table
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

from forwardforward.data.planetoid import load_planetoid
from forwardforward.training.metrics import MetricsLog
from forwardforward.variants.forward_gnn import (
    LINK_METHODS, NODE_METHODS, GraphConfig, link_task, node_task, run_link_method, run_node_method,
)
from forwardforward.variants.forward_gnn.cli import run_info, run_record, summarize

# The FF node classifiers run the network once per class to validate, so they check less often.
SLOW_VALIDATION = {"ff-label-appending": {"eval_every": 5}, "ff-virtual-nodes": {"eval_every": 5}}


def plan(args: argparse.Namespace) -> list[tuple[str, str, str, str, int, int]]:
    """List the runs `(task, dataset, conv, method, layers, seed)` in the order they are run."""
    runs = []
    for task, methods in (("node", args.node_methods), ("link", args.link_methods)):
        greedy = NODE_METHODS if task == "node" else LINK_METHODS
        for conv in args.convs:
            for method in methods:
                for dataset in args.datasets:
                    depths = [max(args.depths)] if greedy[method] else args.depths
                    for layers in depths:
                        for seed in args.seeds:
                            runs.append((task, dataset, conv, method, layers, seed))
    return runs


def run_grid(args: argparse.Namespace) -> None:
    """Run every planned run that `--out` does not contain yet, within `--time-limit-s`."""
    torch.set_num_threads(args.threads)
    log = MetricsLog(Path(args.out))
    done = {(r["task"], r["dataset"], r["conv"], r["method"], r["layers"], r["seed"]) for r in log.read()}
    info = run_info()
    graphs = {}
    start = time.perf_counter()
    todo = [run for run in plan(args) if run not in done]
    print(f"{len(todo)} runs to do, {len(done)} already in {args.out}", file=sys.stderr)
    for count, (task, dataset, conv, method, layers, seed) in enumerate(todo, start=1):
        if time.perf_counter() - start > args.time_limit_s:
            print(f"time limit reached after {count - 1} runs; run again to continue", file=sys.stderr)
            return
        if dataset not in graphs:
            graphs[dataset] = load_planetoid(dataset, args.data_dir)
        config = GraphConfig(conv=conv, hidden=args.hidden, max_epochs=args.max_epochs, patience=args.patience,
                             **SLOW_VALIDATION.get(method, {}))
        if task == "node":
            fit = run_node_method(method, node_task(graphs[dataset], seed), config, layers, seed)
        else:
            fit = run_link_method(method, link_task(graphs[dataset], seed), config, layers, seed)
        record = run_record(task, dataset, method, config, layers, seed, fit)
        record.update(info, config=dataclasses.asdict(config))
        log.append(record)
        scores = " ".join(f"{d.test:.2f}" for d in fit.depths)
        print(f"[{count}/{len(todo)}] {task} {dataset} {conv} {method} L={layers} seed={seed}: "
              f"test {scores} in {fit.train_time_s:.1f} s", file=sys.stderr)


def _cell(stats: dict, depth: int) -> str:
    if depth not in stats:
        return "-"
    mean, std, count = stats[depth]
    return f"{mean:.2f} ± {std:.2f}" + ("" if count == 5 else f" (n={count})")


def tables(records: list[dict]) -> str:
    """Markdown tables: test score per depth (mean ± std over seeds) and peak memory per depth."""
    lines = []
    for task, metric in (("node", "test accuracy (%)"), ("link", "test ROC-AUC (%)")):
        groups: dict[tuple, list[dict]] = {}
        for record in records:
            if record["task"] == task:
                groups.setdefault((record["dataset"], record["conv"], record["method"]), []).append(record)
        if not groups:
            continue
        lines += [f"#### {task} — {metric}, mean ± std over seeds", "",
                  "| data set | conv | method | 1 layer | 2 layers | 3 layers | 4 layers | train s (max depth) |",
                  "|---|---|---|---|---|---|---|---|"]
        for (dataset, conv, method), group in sorted(groups.items()):
            stats = summarize(group)
            deepest = max(r["layers"] for r in group)
            seconds = [r["train_time_s"] for r in group if r["layers"] == deepest]
            cells = " | ".join(_cell(stats, d) for d in range(1, 5))
            lines.append(f"| {dataset} | {conv} | {method} | {cells} | {sum(seconds) / len(seconds):.1f} |")
        lines.append("")
        lines += [f"#### {task} — peak training memory (MB, autograd-saved tensors + trained parameters "
                  "with gradients and Adam state), mean over seeds", "",
                  "| data set | conv | method | 1 layer | 2 layers | 3 layers | 4 layers |", "|---|---|---|---|---|---|---|"]
        for (dataset, conv, method), group in sorted(groups.items()):
            memory = summarize(group, key="peak_memory_bytes")
            cells = " | ".join(f"{memory[d][0] / 2**20:.1f}" if d in memory else "-" for d in range(1, 5))
            lines.append(f"| {dataset} | {conv} | {method} | {cells} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark grid, or print its tables with `--table`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON-lines file of results (appended to)")
    parser.add_argument("--table", action="store_true", help="print the tables of --out and exit")
    parser.add_argument("--data-dir", default=None, help="data folder containing planetoid/")
    parser.add_argument("--datasets", nargs="+", default=["cora", "citeseer"])
    parser.add_argument("--convs", nargs="+", default=["gcn", "sage", "gat"])
    parser.add_argument("--node-methods", nargs="*", default=list(NODE_METHODS), choices=list(NODE_METHODS))
    parser.add_argument("--link-methods", nargs="*", default=list(LINK_METHODS), choices=list(LINK_METHODS))
    parser.add_argument("--depths", nargs="+", type=int, default=[1, 2, 3, 4])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--hidden", type=int, default=128, help="width of every GNN layer")
    parser.add_argument("--max-epochs", type=int, default=200, help="training steps per layer at most")
    parser.add_argument("--patience", type=int, default=20, help="epochs without a better validation score")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--time-limit-s", type=float, default=float("inf"),
                        help="start no new run after this many seconds")
    args = parser.parse_args(argv)
    if args.table:
        print(tables(MetricsLog(Path(args.out)).read()))
        return 0
    run_grid(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
