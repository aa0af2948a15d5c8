"""The `forwardforward` command line: train, evaluate and list recipes.

A thin layer over `forwardforward.training`: it parses options, prints results and turns the
library's errors into one-line messages with exit status 2 (usage) or 1 (failure).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import __version__
from .config import load_config, read_recipe, recipe_names
from .errors import ForwardForwardError

DEFAULT_RECIPE = "mnist-quick"
PREDICTION_METHODS = ("goodness", "softmax", "probe")


def build_parser() -> argparse.ArgumentParser:
    """Create the argument parser with its three subcommands."""
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
    train.add_argument("--epochs", type=int, default=None, help="number of epochs (sets train.epochs)")
    train.add_argument("--seed", type=int, default=None, help="random seed (sets train.seed)")
    train.add_argument("--data-dir", default=None,
                       help="folder with one sub-folder per data set (default: $FORWARDFORWARD_DATA, "
                            "then the user cache folder)")
    train.add_argument("--out", default=None, help="new run directory (default: runs/RECIPE-TIME)")
    train.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"),
                       help="where to train (default: the recipe's train.device, normally auto)")
    train.add_argument("--resume", default=None, metavar="RUN_DIR",
                       help="continue the run in RUN_DIR from its last checkpoint, with the data "
                            "folder it was started with unless --data-dir is given")
    train.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch log lines")

    evaluate = sub.add_parser("evaluate", help="test error of a run's last checkpoint")
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by train")
    evaluate.add_argument("--data-dir", default=None,
                          help="data folder, as for train (default: the folder the run was trained with)")
    evaluate.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"),
                          help="where to evaluate (default: the run's train.device)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")

    sub.add_parser("recipes", help="list the shipped recipes")
    return parser


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .training import train

    if args.resume is not None:
        options = (("--recipe", args.recipe), ("--set", args.overrides or None),
                   ("--epochs", args.epochs), ("--seed", args.seed), ("--out", args.out))
        conflicting = [name for name, value in options if value is not None]
        if conflicting:
            parser.error(f"--resume continues a run with its saved settings; drop {', '.join(conflicting)}")
        result = train(resume=args.resume, data_dir=args.data_dir, device=args.device, progress=not args.quiet)
    else:
        overrides = list(args.overrides)
        if args.epochs is not None:
            overrides.append(f"train.epochs={args.epochs}")
        if args.seed is not None:
            overrides.append(f"train.seed={args.seed}")
        config = load_config(args.recipe or DEFAULT_RECIPE, overrides)
        result = train(config, out_dir=args.out, data_dir=args.data_dir, device=args.device,
                       progress=not args.quiet)
    print(f"run directory: {result.run_dir}")
    errors = [f"{method} {result.final[f'test/error_{method}']:.2f} %"
              for method in PREDICTION_METHODS if f"test/error_{method}" in result.final]
    print("test error: " + ", ".join(errors))
    return 0


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
        return _recipes()
    except ForwardForwardError as exc:
        print(f"forwardforward: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("forwardforward: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
