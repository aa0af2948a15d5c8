"""Tests of load_dataset and resolve_data_dir on small generated IDX files and on real data."""

import dataclasses
import hashlib
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from forwardforward.data import DATASETS, load_dataset, resolve_data_dir, write_idx
from forwardforward.errors import DataError, UsageError

# split="hinton" needs more than 10,000 training images, so the generated training files
# hold 10,050: 50 for training and 10,000 for validation.
N_TRAIN = 10_050
N_TEST = 30
STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
REAL_MNIST_TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def make_images(count, seed):
    """Return distinct uint8 images that compress fast, unlike random noise."""
    index = np.arange(count)[:, None, None]
    rows = np.arange(28)[None, :, None]
    columns = np.arange(28)[None, None, :]
    return ((index * 7 + seed + rows * columns) % 256).astype(np.uint8)


def make_labels(count):
    return (np.arange(count) % 10).astype(np.uint8)


def write_dataset(folder, suffix=".gz", train_images=None, train_labels=None, test_images=None, test_labels=None):
    """Write the four standard files into `folder` and return the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": make_images(N_TRAIN, 1) if train_images is None else train_images,
        "train-labels-idx1-ubyte": make_labels(N_TRAIN) if train_labels is None else train_labels,
        "t10k-images-idx3-ubyte": make_images(N_TEST, 2) if test_images is None else test_images,
        "t10k-labels-idx1-ubyte": make_labels(N_TEST) if test_labels is None else test_labels,
    }
    for stem, array in arrays.items():
        write_idx(folder / f"{stem}{suffix}", array)
    return arrays


@pytest.fixture
def offline_without_data_dir(monkeypatch):
    monkeypatch.setenv("FORWARDFORWARD_OFFLINE", "1")
    monkeypatch.delenv("FORWARDFORWARD_DATA", raising=False)


def test_load_hinton_split(tmp_path, offline_without_data_dir):
    arrays = write_dataset(tmp_path / "mnist")

    data = load_dataset("mnist", data_dir=tmp_path)

    assert data.name == "mnist"
    assert data.num_classes == 10
    assert data.image_shape == (1, 28, 28)
    assert data.train.images.shape == (50, 784)
    assert data.valid.images.shape == (10_000, 784)
    assert data.test.images.shape == (N_TEST, 784)
    assert data.train.images.dtype == torch.float32
    assert data.train.labels.dtype == torch.int64
    assert data.test.labels.shape == (N_TEST,)
    train_images = arrays["train-images-idx3-ubyte"].reshape(N_TRAIN, 784)
    torch.testing.assert_close(data.train.images, torch.from_numpy(train_images[:50]).float() / 255)
    torch.testing.assert_close(data.valid.images, torch.from_numpy(train_images[50:]).float() / 255)
    assert data.valid.labels.tolist() == make_labels(N_TRAIN)[50:].tolist()
    assert data.test.labels.tolist() == make_labels(N_TEST).tolist()


def test_load_pixel_range(tmp_path, offline_without_data_dir):
    images = np.zeros((N_TEST, 28, 28), dtype=np.uint8)
    images[0, 0, 0] = 255
    write_dataset(tmp_path / "mnist", test_images=images)

    data = load_dataset("mnist", data_dir=tmp_path)

    assert data.test.images.min().item() == 0.0
    assert data.test.images.max().item() == 1.0
    assert data.test.images[0, 0].item() == 1.0


def test_load_full_split(tmp_path, offline_without_data_dir):
    write_dataset(tmp_path / "mnist")

    data = load_dataset("mnist", data_dir=tmp_path, split="full")

    assert data.train.images.shape == (N_TRAIN, 784)
    assert data.train.labels.shape == (N_TRAIN,)
    assert data.valid is None


def test_load_limit(tmp_path, offline_without_data_dir):
    write_dataset(tmp_path / "mnist")

    data = load_dataset("mnist", data_dir=tmp_path, limit=7)

    assert data.train.images.shape == (7, 784)
    assert data.valid.images.shape == (7, 784)
    assert data.test.images.shape == (7, 784)
    assert data.valid.labels.tolist() == make_labels(N_TRAIN)[50:57].tolist()


def test_load_limit_above_size(tmp_path, offline_without_data_dir):
    write_dataset(tmp_path / "mnist")

    data = load_dataset("mnist", data_dir=tmp_path, limit=100_000)

    assert data.train.images.shape == (50, 784)
    assert data.test.images.shape == (N_TEST, 784)


def test_load_uncompressed_files(tmp_path, offline_without_data_dir):
    write_dataset(tmp_path / "mnist", suffix="")

    data = load_dataset("mnist", data_dir=tmp_path)

    assert data.test.images.shape == (N_TEST, 784)


def test_load_prefers_gz(tmp_path, offline_without_data_dir):
    folder = tmp_path / "mnist"
    write_dataset(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte", np.full(N_TEST, 9, dtype=np.uint8))

    data = load_dataset("mnist", data_dir=tmp_path)

    assert data.test.labels.tolist() == make_labels(N_TEST).tolist()


def test_load_float_images(tmp_path, offline_without_data_dir):
    images = np.random.default_rng(3).random((N_TEST, 28, 28)).astype(np.float64)
    write_dataset(tmp_path / "mnist", test_images=images)

    data = load_dataset("mnist", data_dir=tmp_path)

    assert data.test.images.dtype == torch.float32
    torch.testing.assert_close(data.test.images, torch.from_numpy(images.reshape(N_TEST, 784)).float())


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_load_non_finite_images(tmp_path, offline_without_data_dir, bad_value):
    images = np.zeros((N_TEST, 28, 28), dtype=np.float32)
    images[4, 10, 10] = bad_value
    write_dataset(tmp_path / "mnist", test_images=images)

    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", data_dir=tmp_path)

    message = str(excinfo.value)
    assert "t10k-images-idx3-ubyte.gz" in message
    assert "NaN or infinite" in message
    assert "image 4" in message


def test_load_float_images_out_of_range(tmp_path, offline_without_data_dir):
    images = np.zeros((N_TEST, 28, 28), dtype=np.float32)
    images[2, 0, 0] = 255.0
    write_dataset(tmp_path / "mnist", test_images=images)

    with pytest.raises(DataError, match=r"outside \[0, 1\].*image 2"):
        load_dataset("mnist", data_dir=tmp_path)


def test_load_integer_images_rejected(tmp_path, offline_without_data_dir):
    write_dataset(tmp_path / "mnist", test_images=np.zeros((N_TEST, 28, 28), dtype=np.int16))

    with pytest.raises(DataError, match="pixel dtype int16"):
        load_dataset("mnist", data_dir=tmp_path)


def test_load_labels_out_of_range(tmp_path, offline_without_data_dir):
    labels = make_labels(N_TRAIN)
    labels[123] = 10
    write_dataset(tmp_path / "mnist", train_labels=labels)

    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", data_dir=tmp_path)

    message = str(excinfo.value)
    assert "train-labels-idx1-ubyte.gz" in message
    assert "label 10 at index 123" in message


def test_load_negative_label(tmp_path, offline_without_data_dir):
    labels = make_labels(N_TEST).astype(np.int8)
    labels[0] = -1
    write_dataset(tmp_path / "mnist", test_labels=labels)

    with pytest.raises(DataError, match="label -1 at index 0"):
        load_dataset("mnist", data_dir=tmp_path)


def test_load_count_mismatch(tmp_path, offline_without_data_dir):
    write_dataset(tmp_path / "mnist", test_labels=make_labels(N_TEST - 1))

    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", data_dir=tmp_path)

    message = str(excinfo.value)
    assert f"{N_TEST} images" in message
    assert f"{N_TEST - 1} labels" in message
    assert "t10k-labels-idx1-ubyte.gz" in message


def test_load_wrong_image_shape(tmp_path, offline_without_data_dir):
    write_dataset(tmp_path / "mnist", test_images=np.zeros((N_TEST, 28, 27), dtype=np.uint8))

    with pytest.raises(DataError, match=r"shape \(30, 28, 27\), expected \(n, 28, 28\)"):
        load_dataset("mnist", data_dir=tmp_path)


def test_load_corrupt_file(tmp_path, offline_without_data_dir):
    folder = tmp_path / "mnist"
    write_dataset(folder)
    labels_path = folder / "t10k-labels-idx1-ubyte.gz"
    labels_path.write_bytes(labels_path.read_bytes()[:-8])

    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("mnist", data_dir=tmp_path)


def test_hinton_split_needs_enough_images(tmp_path, offline_without_data_dir):
    write_dataset(tmp_path / "mnist", train_images=make_images(10_000, 1), train_labels=make_labels(10_000))

    with pytest.raises(DataError, match="split='full'"):
        load_dataset("mnist", data_dir=tmp_path)

    data = load_dataset("mnist", data_dir=tmp_path, split="full")
    assert data.train.images.shape == (10_000, 784)


def test_unknown_name(tmp_path, offline_without_data_dir):
    with pytest.raises(UsageError) as excinfo:
        load_dataset("cifar100", data_dir=tmp_path)

    message = str(excinfo.value)
    assert "'cifar100'" in message
    assert "fashion-mnist" in message
    assert "mnist" in message


def test_unknown_split(tmp_path, offline_without_data_dir):
    with pytest.raises(UsageError) as excinfo:
        load_dataset("mnist", data_dir=tmp_path, split="random")

    message = str(excinfo.value)
    assert "'random'" in message
    assert "hinton" in message
    assert "full" in message


@pytest.mark.parametrize("limit", [0, -3, 2.5, True, "10"])
def test_invalid_limit(tmp_path, offline_without_data_dir, limit):
    with pytest.raises(UsageError, match="limit"):
        load_dataset("mnist", data_dir=tmp_path, limit=limit)


def test_offline_missing_files(tmp_path, offline_without_data_dir):
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_idx(folder / "t10k-labels-idx1-ubyte", make_labels(N_TEST))

    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", data_dir=tmp_path)

    message = str(excinfo.value)
    assert str(folder) in message
    assert "train-images-idx3-ubyte.gz" in message
    assert "train-labels-idx1-ubyte.gz" in message
    assert "t10k-images-idx3-ubyte.gz" in message
    assert "t10k-labels-idx1-ubyte.gz" not in message
    assert "FORWARDFORWARD_OFFLINE" in message
    assert "FORWARDFORWARD_DATA" in message
    assert "--data-dir" in message
    assert "\n" not in message
    assert list(folder.iterdir()) == [folder / "t10k-labels-idx1-ubyte"]


def test_download_false_missing_files(tmp_path, monkeypatch):
    monkeypatch.delenv("FORWARDFORWARD_OFFLINE", raising=False)

    with pytest.raises(DataError, match="download=False"):
        load_dataset("mnist", data_dir=tmp_path, download=False)

    assert list(tmp_path.iterdir()) == []


def test_system_dir_read_in_place(tmp_path, offline_without_data_dir, monkeypatch):
    system_dir = tmp_path / "usr-share" / "fashion-mnist"
    write_dataset(system_dir)
    info = dataclasses.replace(DATASETS["fashion-mnist"], system_dirs=(system_dir,))
    monkeypatch.setitem(DATASETS, "fashion-mnist", info)
    data_dir = tmp_path / "data"

    data = load_dataset("fashion-mnist", data_dir=data_dir)

    assert data.name == "fashion-mnist"
    assert data.test.labels.tolist() == make_labels(N_TEST).tolist()
    assert not data_dir.exists()


def test_data_dir_before_system_dir(tmp_path, offline_without_data_dir, monkeypatch):
    system_dir = tmp_path / "system"
    write_dataset(system_dir, test_labels=np.full(N_TEST, 3, dtype=np.uint8))
    write_dataset(tmp_path / "data" / "fashion-mnist")
    info = dataclasses.replace(DATASETS["fashion-mnist"], system_dirs=(system_dir,))
    monkeypatch.setitem(DATASETS, "fashion-mnist", info)

    data = load_dataset("fashion-mnist", data_dir=tmp_path / "data")

    assert data.test.labels.tolist() == make_labels(N_TEST).tolist()


def test_system_dir_listed_when_missing(tmp_path, offline_without_data_dir, monkeypatch):
    system_dir = tmp_path / "system"
    info = dataclasses.replace(DATASETS["fashion-mnist"], system_dirs=(system_dir,))
    monkeypatch.setitem(DATASETS, "fashion-mnist", info)

    with pytest.raises(DataError, match=f"Also searched {system_dir}"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "data")


class FileHandler(http.server.BaseHTTPRequestHandler):
    """Serves the files of `self.server.files`, a dict from URL path to bytes, 404 for others."""

    def do_GET(self):
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def file_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FileHandler)
    server.daemon_threads = True
    server.files = {}
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_load_downloads_missing_files(tmp_path, monkeypatch, file_server):
    monkeypatch.delenv("FORWARDFORWARD_OFFLINE", raising=False)
    source = tmp_path / "source"
    write_dataset(source)
    checksums = {}
    for path in source.iterdir():
        content = path.read_bytes()
        file_server.files[f"/mirror/{path.name}"] = content
        checksums[path.name] = hashlib.sha256(content).hexdigest()
    host, port = file_server.server_address
    info = dataclasses.replace(
        DATASETS["mnist"],
        mirrors=(f"http://{host}:{port}/absent/", f"http://{host}:{port}/mirror/"),
        sha256=checksums,
    )
    monkeypatch.setitem(DATASETS, "mnist", info)
    data_dir = tmp_path / "data"
    (data_dir / "mnist").mkdir(parents=True)
    write_idx(data_dir / "mnist" / "t10k-labels-idx1-ubyte", make_labels(N_TEST))

    data = load_dataset("mnist", data_dir=data_dir, limit=5)

    assert data.train.images.shape == (5, 784)
    assert sorted(path.name for path in (data_dir / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte",
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]
    for name in ("t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        assert (data_dir / "mnist" / name).read_bytes() == (source / name).read_bytes()


def test_download_failure_message_and_folder(tmp_path, monkeypatch, file_server):
    monkeypatch.delenv("FORWARDFORWARD_OFFLINE", raising=False)
    host, port = file_server.server_address
    info = dataclasses.replace(DATASETS["mnist"], mirrors=(f"http://{host}:{port}/absent/",))
    monkeypatch.setitem(DATASETS, "mnist", info)
    data_dir = tmp_path / "data"

    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", data_dir=data_dir)

    message = str(excinfo.value)
    assert f"http://{host}:{port}/absent/train-images-idx3-ubyte.gz (HTTP 404" in message
    assert "t10k-labels-idx1-ubyte.gz" in message
    assert message.count("Put the files in") == 1
    assert "by hand" not in message
    assert "\n" not in message
    assert not data_dir.exists()


def test_resolve_data_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("FORWARDFORWARD_DATA", str(tmp_path / "from-env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    assert resolve_data_dir(tmp_path / "argument") == tmp_path / "argument"
    assert resolve_data_dir(str(tmp_path / "argument")) == tmp_path / "argument"
    assert resolve_data_dir() == tmp_path / "from-env"

    monkeypatch.delenv("FORWARDFORWARD_DATA")
    assert resolve_data_dir() == tmp_path / "xdg" / "forwardforward"

    monkeypatch.setenv("FORWARDFORWARD_DATA", "")
    assert resolve_data_dir("") == tmp_path / "xdg" / "forwardforward"


def test_resolve_data_dir_home_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("FORWARDFORWARD_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "forwardforward"

    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "forwardforward"

    assert resolve_data_dir("~/datasets") == tmp_path / "home" / "datasets"


def real_data_folder(name):
    data_dir = os.environ.get("FORWARDFORWARD_DATA")
    if not data_dir:
        pytest.skip("FORWARDFORWARD_DATA is not set, so the real data set cannot be found")
    folder = Path(data_dir) / name
    for stem in STEMS:
        if not (folder / f"{stem}.gz").is_file() and not (folder / stem).is_file():
            pytest.skip(f"{folder} lacks {stem}(.gz)")
    return Path(data_dir)


def test_real_mnist(monkeypatch):
    data_dir = real_data_folder("mnist")
    monkeypatch.setenv("FORWARDFORWARD_OFFLINE", "1")

    data = load_dataset("mnist", data_dir=data_dir)

    assert data.train.images.shape == (50_000, 784)
    assert data.valid.images.shape == (10_000, 784)
    assert data.test.images.shape == (10_000, 784)
    assert data.train.images.min().item() == 0.0
    assert data.train.images.max().item() == 1.0
    assert torch.bincount(data.test.labels, minlength=10).tolist() == REAL_MNIST_TEST_CLASS_COUNTS


def test_real_fashion_mnist_debian(tmp_path, monkeypatch):
    system_dir = DATASETS["fashion-mnist"].system_dirs[0]
    if not system_dir.is_dir():
        pytest.skip(f"{system_dir} is missing (Debian package dataset-fashion-mnist is not installed)")
    monkeypatch.setenv("FORWARDFORWARD_OFFLINE", "1")

    data = load_dataset("fashion-mnist", data_dir=tmp_path)

    assert data.train.images.shape == (50_000, 784)
    assert data.valid.images.shape == (10_000, 784)
    assert data.test.images.shape == (10_000, 784)
    assert torch.bincount(data.test.labels, minlength=10).tolist() == [1000] * 10
