"""Measure matrix-multiply throughput at the shapes of FF training: the machine's physical limit.

For each Hinton recipe and batch size it times every matrix product of one training batch alone
(see `common.ff_training_gemms`) and reports the throughput of the whole set, together with a
large square product as the machine's best case.

Usage: python -m benchmarks.gemm_peak [--device cpu] [--dtypes float32 bfloat16]
"""

from __future__ import annotations

import torch

from .common import Gemm, base_parser, ff_training_gemms, machine_record, setup, time_gemms, write_results

# (recipe, input features, hidden widths) of the Hinton recipes.
NETWORKS = {
    "hinton-matlab-mnist": (784, [1000, 1000, 1000]),
    "hinton-mnist-4x2000": (784, [2000, 2000, 2000, 2000]),
}
BATCH_SIZES = (100, 1000)
SQUARE = 2048


def gemm_set_rate(gemms: list[Gemm], seconds: list[float]) -> float:
    """FLOP/s of running the whole set of products once, each at its measured speed."""
    return sum(g.flops for g in gemms) / sum(seconds)


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    args = parser.parse_args(argv)
    device = setup(args)

    rows = []
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        square = Gemm(SQUARE, SQUARE, SQUARE, "square")
        (seconds,) = time_gemms([square], device, dtype)
        rows.append({
            "shapes": f"square {SQUARE}", "batch": "", "gflop_per_s": square.flops / seconds / 1e9,
            **machine_record(device, dtype, args.seed),
        })
        for recipe, (in_features, hidden) in NETWORKS.items():
            for batch in BATCH_SIZES:
                gemms = ff_training_gemms(in_features, hidden, batch)
                seconds = time_gemms(gemms, device, dtype)
                rows.append({
                    "shapes": recipe, "batch": batch,
                    "gflop_per_s": gemm_set_rate(gemms, seconds) / 1e9,
                    "slowest_shape": str(min(zip(gemms, seconds), key=lambda p: p[0].flops / p[1])[0]),
                    **machine_record(device, dtype, args.seed),
                })
    write_results("gemm_peak", rows, args.out, ["shapes", "batch", "dtype", "gflop_per_s", "threads", "load_avg_1min"])


if __name__ == "__main__":
    main()
