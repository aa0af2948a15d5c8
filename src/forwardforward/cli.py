"""The `forwardforward` command line: train, evaluate, plot and compare runs, list recipes.

A thin layer over `forwardforward.training`: it parses options, prints results and turns the
library's errors into one-line messages with exit status 2 (usage) or 1 (failure).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from . import __version__
from .config import load_config, read_recipe, recipe_names
from .errors import ForwardForwardError, UsageError
from .variants.forward_gnn.cli import add_graph_command, run_graph_command

DEFAULT_RECIPE = "mnist-quick"
PREDICTION_METHODS = ("goodness", "softmax", "probe")


def build_parser() -> argparse.ArgumentParser:
    """Create the argument parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog="forwardforward",
        description="Train and evaluate Forward-Forward networks.",
    )
    parser.add_argument("--version", action="version", version=f"forwardforward {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a network from a recipe, or resume a run")
    train.add_argument("--recipe", default=None,
                       help=f"shipped recipe name or path of a .toml file (default: {DEFAULT_RECIPE})")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a recipe setting by its dotted key, e.g. --set model.hidden=[500,500]")
    train.add_argument("--epochs", type=int, default=None,
                       help="number of epochs (sets train.epochs; rejected where train.layer_epochs "
                            "sets the epochs per layer)")
    train.add_argument("--seed", type=int, default=None, help="random seed (sets train.seed)")
    train.add_argument("--data-dir", default=None,
                       help="folder with one sub-folder per data set (default: $FORWARDFORWARD_DATA, "
                            "then the user cache folder)")
    train.add_argument("--out", default=None, help="new run directory (default: runs/RECIPE-TIME)")
    train.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"),
                       help="where to train (default: the recipe's train.device, normally auto)")
    train.add_argument("--backend", default=None, choices=("torch", "jax"),
                       help="array library to train with (sets train.backend; default: the recipe's, "
                            "normally torch); jax needs pip install 'forwardforward[jax]'")
    train.add_argument("--resume", default=None, metavar="RUN_DIR",
                       help="continue the run in RUN_DIR from its last checkpoint, with the data "
                            "folder it was started with unless --data-dir is given")
    train.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch log lines")
    train.add_argument("--tensorboard", action="store_true",
                       help="also log metrics and goodness histograms for TensorBoard in RUN_DIR/tensorboard "
                            "(needs the tensorboard package; a resumed run that has that folder keeps logging)")
    train.add_argument("--parallel", default=None, choices=("pipeline", "data", "both"),
                       help="train across the processes of a torchrun job: a layer pipeline with one "
                            "stage per process, data-parallel replicas, or both (see --stages)")
    train.add_argument("--stages", type=int, default=None,
                       help="pipeline stages for --parallel both; the processes are split evenly between them")
    train.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                       help="with --parallel: maximum wait of any send, receive or collective before the "
                            "job stops with an error (default: 300)")

    evaluate = sub.add_parser("evaluate", help="test error of a run's last checkpoint")
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by train")
    evaluate.add_argument("--data-dir", default=None,
                          help="data folder, as for train (default: the folder the run was trained with)")
    evaluate.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"),
                          help="where to evaluate (default: the run's train.device)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")

    plot = sub.add_parser("plot", help="write PNG figures of a run (needs matplotlib)")
    plot.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by train")
    plot.add_argument("--out", default=None, metavar="DIR", help="folder for the PNG files (default: RUN_DIR/plots)")

    compare = sub.add_parser("compare", help="table of several runs: differing settings, errors, time")
    compare.add_argument("run_dirs", metavar="RUN_DIR", nargs="+", help="run directories written by train")
    compare.add_argument("--json", action="store_true", help="print one JSON object")

    sub.add_parser("recipes", help="list the shipped recipes")
    add_graph_command(sub)
    return parser


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    extra = {}
    if args.parallel is not None:
        if args.tensorboard:
            parser.error("--tensorboard is not supported with --parallel; drop one of them")
        train = _distributed_train(args)
    else:
        from .training import train

        extra["tensorboard"] = args.tensorboard
        if args.stages is not None or args.timeout is not None:
            parser.error("--stages and --timeout apply only with --parallel")
    if args.resume is not None:
        options = (("--recipe", args.recipe), ("--set", args.overrides or None),
                   ("--epochs", args.epochs), ("--seed", args.seed), ("--out", args.out),
                   ("--backend", args.backend))
        conflicting = [name for name, value in options if value is not None]
        if conflicting:
            parser.error(f"--resume continues a run with its saved settings; drop {', '.join(conflicting)}")
        result = train(resume=args.resume, data_dir=args.data_dir, device=args.device, progress=not args.quiet,
                       **extra)
    else:
        overrides = list(args.overrides)
        if args.epochs is not None:
            overrides.append(f"train.epochs={args.epochs}")
        if args.seed is not None:
            overrides.append(f"train.seed={args.seed}")
        if args.backend is not None:
            overrides.append(f"train.backend='{args.backend}'")
        config = load_config(args.recipe or DEFAULT_RECIPE, overrides)
        layer_epochs = getattr(config.train, "layer_epochs", ())
        if args.epochs is not None and layer_epochs:
            raise UsageError(f"--epochs sets train.epochs, which this run ignores because train.layer_epochs = "
                             f"{list(layer_epochs)} sets the epochs of each layer; use --set "
                             f"train.layer_epochs=[...] with one entry per layer instead")
        result = train(config, out_dir=args.out, data_dir=args.data_dir, device=args.device,
                       progress=not args.quiet, **extra)
    if result is None:
        return 0  # a rank other than 0 of a distributed run: rank 0 prints the results
    print(f"run directory: {result.run_dir}")
    errors = [f"{method} {result.final[f'test/error_{method}']:.2f} %"
              for method in PREDICTION_METHODS if f"test/error_{method}" in result.final]
    print("test error: " + ", ".join(errors))
    return 0


def _distributed_train(args: argparse.Namespace):
    """Return `train_distributed` with the parallel options of `args` bound, in `train`'s signature."""
    import functools

    from .distributed import DEFAULT_TIMEOUT_S, train_distributed

    timeout = args.timeout if args.timeout is not None else DEFAULT_TIMEOUT_S
    return functools.partial(train_distributed, parallel=args.parallel, stages=args.stages, timeout_s=timeout)


def _evaluate(args: argparse.Namespace) -> int:
    from .training import evaluate_run

    result = evaluate_run(args.run_dir, data_dir=args.data_dir, device=args.device)
    summary = {f"test_error_{m}": result[f"test/error_{m}"] for m in PREDICTION_METHODS
               if f"test/error_{m}" in result}
    if args.json:
        detail = {k.replace("/", "_"): v for k, v in result.items() if k != "epoch"}
        print(json.dumps({"epoch": result["epoch"], **summary, **detail}, sort_keys=True))
        return 0
    print(f"run {args.run_dir} after epoch {result['epoch']} (errors in %)")
    for key, value in result.items():
        if key != "epoch":
            print(f"  {key:<24} {value:6.2f}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from .plotting import plot_run

    result = plot_run(args.run_dir, args.out)
    for path in result.written.values():
        print(path)
    for name, reason in result.skipped.items():
        print(f"forwardforward: skipped {name}: {reason}", file=sys.stderr)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .compare import compare_runs, format_comparison

    comparison = compare_runs(args.run_dirs)
    print(json.dumps(comparison, sort_keys=True) if args.json else format_comparison(comparison))
    return 0


def _recipes() -> int:
    for name in recipe_names():
        description = " ".join(str(read_recipe(name).get("description", "")).split())
        print(f"{name}\n    {description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "train":
            return _train(args, parser)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "plot":
            return _plot(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "graph":
            return run_graph_command(args)
        return _recipes()
    except ForwardForwardError as exc:
        print(f"forwardforward: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("forwardforward: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
