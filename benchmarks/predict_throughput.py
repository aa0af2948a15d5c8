"""Measure prediction by goodness over all labels against plain forward passes.

Prediction by goodness runs every test image once per label. The library batches the labels
into one pass of `num_classes * batch` rows (`FFNetwork.goodness_per_label`). This script
compares its time with ten plain forward passes of the same batch (neutral label, no goodness),
which is the cost of the matrix products alone; `ratio` is the first over the second.

Usage: python -m benchmarks.predict_throughput [--batch 1000]
"""

from __future__ import annotations

import torch

from forwardforward.labels import overlay_neutral
from forwardforward.network import FFNetwork

from .common import base_parser, machine_record, setup, time_call, write_results

NETWORKS = {"3x1000": [1000, 1000, 1000], "4x2000": [2000, 2000, 2000, 2000]}


def measure(name: str, hidden: list[int], batch: int, precision: str, device: torch.device, seed: int) -> dict:
    """Time goodness over all labels and ten plain passes for one network and batch size."""
    torch.manual_seed(seed)
    network = FFNetwork.fully_connected(784, hidden).to(device).eval()
    images = torch.rand(batch, 784, generator=torch.Generator().manual_seed(seed)).to(device)
    classes = network.num_classes
    neutral = overlay_neutral(images, classes, network.label_strength)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")

    def predict() -> None:
        with torch.no_grad(), autocast:
            network.goodness_per_label(images).sum(dim=1).argmax(dim=1)

    def plain_passes() -> None:
        with torch.no_grad(), autocast:
            for _ in range(classes):
                network.activities(neutral)

    predict_s = time_call(predict, device)
    plain_s = time_call(plain_passes, device)
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    return {
        "network": name, "batch": batch, "precision": precision,
        "predict_samples_per_s": batch / predict_s,
        "predict_ms": 1000 * predict_s, "ten_plain_passes_ms": 1000 * plain_s,
        "ratio": predict_s / plain_s,
        **machine_record(device, dtype, seed),
    }


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000, help="test images per call (default: 1000)")
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    args = parser.parse_args(argv)
    device = setup(args)
    rows = [
        measure(name, hidden, args.batch, precision, device, args.seed)
        for name, hidden in NETWORKS.items() for precision in args.precisions
    ]
    write_results("predict_throughput", rows, args.out, [
        "network", "batch", "precision", "predict_samples_per_s", "predict_ms", "ten_plain_passes_ms", "ratio",
    ])


if __name__ == "__main__":
    main()
