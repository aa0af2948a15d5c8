"""A small, learnable data set in the CIFAR-10 binary layout, written for tests."""

import gzip

import numpy as np

RECORD_BYTES = 3073


def make_synthetic_cifar(count, seed):
    """Return uint8 records `(count, 3073)`: a label byte, then a noisy image whose class lights one 8 x 8 block."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count).astype(np.uint8)
    images = rng.integers(0, 100, size=(count, 3, 32, 32), dtype=np.uint8)
    for label in range(10):
        row, column = 8 * (label // 4), 8 * (label % 4)
        images[labels == label, label % 3, row : row + 8, column : column + 8] = 255
    return np.concatenate([labels[:, None], images.reshape(count, -1)], axis=1)


def write_synthetic_cifar(data_dir, name="cifar10-jpeg", per_file=40, compress=True):
    """Write five training batches and a test batch of `per_file` records into `data_dir`/`name`."""
    folder = data_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    stems = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for seed, stem in enumerate(stems):
        raw = make_synthetic_cifar(per_file, seed).tobytes()
        if compress:
            (folder / f"{stem}.bin.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / f"{stem}.bin").write_bytes(raw)
    return data_dir
