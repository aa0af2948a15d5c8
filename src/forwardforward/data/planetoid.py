"""Planetoid citation graphs (Cora, CiteSeer, PubMed) through PyTorch Geometric, and their splits.

The raw files are the eight `ind.<name>.<ext>` pickles of Yang et al. (2016), read by PyTorch
Geometric's own `Planetoid` data set class. Two folder layouts under the data folder work:

- `planetoid/<Name>/raw/ind.<name>.*`, the layout that `torch_geometric.datasets.Planetoid` uses
  for its `root` argument (`root/<Name>/raw`), with `<Name>` as `Cora`, `CiteSeer` or `PubMed`;
- `planetoid/raw/ind.<name>.*`, all data sets in one folder, as in the original Planetoid
  repository.

PyG's class writes processed files next to `raw/` and downloads missing raw files. To keep the
data folder read-only and never download, the loader first checks that all eight files are
present, then links them into a temporary `root/<Name>/raw` and lets PyG process them there.
Needs the `graph` extra: `pip install forwardforward[graph]`.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from forwardforward.data.locate import resolve_data_dir
from forwardforward.errors import DataError, UsageError

PLANETOID_FOLDER = "planetoid"
# Lower-case name accepted from users -> the name that PyG's Planetoid class expects.
PLANETOID_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
PLANETOID_EXTENSIONS = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
NODE_SPLIT_FRACTIONS = (0.64, 0.16, 0.20)


def require_torch_geometric():
    """Import and return `torch_geometric`.

    Raises:
        UsageError: PyTorch Geometric is not installed; the message names the extra to install.
    """
    try:
        import torch_geometric
    except ImportError as exc:
        raise UsageError(
            f"graph training needs PyTorch Geometric and SciPy ({exc}); "
            "install them with: pip install 'forwardforward[graph]'"
        ) from None
    return torch_geometric


def planetoid_file_names(name: str) -> list[str]:
    """Return the eight raw file names of a Planetoid data set, e.g. `ind.cora.x`.

    Raises:
        UsageError: `name` is not cora, citeseer or pubmed.
    """
    key = _canonical_name(name)
    return [f"ind.{key}.{extension}" for extension in PLANETOID_EXTENSIONS]


def _canonical_name(name: str) -> str:
    key = str(name).lower()
    if key not in PLANETOID_NAMES:
        raise UsageError(f"unknown Planetoid data set {name!r}; choose one of {', '.join(PLANETOID_NAMES)}")
    return key


def find_planetoid_raw(name: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Find the folder that contains all raw files of a Planetoid data set.

    Searches `<data_dir>/planetoid/<Name>/raw`, then `<data_dir>/planetoid/raw`.

    Returns:
        The first folder that contains all eight files.

    Raises:
        UsageError: `name` is not a Planetoid data set.
        DataError: no folder contains all eight files. The message names the missing files of
            the folder that contains the most of them (or the expected folders, when neither
            contains any) and says that nothing is downloaded.
    """
    key = _canonical_name(name)
    root = resolve_data_dir(data_dir) / PLANETOID_FOLDER
    candidates = [root / PLANETOID_NAMES[key] / "raw", root / "raw"]
    files = planetoid_file_names(key)
    best_folder, best_missing = None, files
    for folder in candidates:
        missing = [f for f in files if not (folder / f).is_file()]
        if not missing:
            return folder
        if len(missing) < len(best_missing):
            best_folder, best_missing = folder, missing
    if best_folder is None:
        raise DataError(
            f"Planetoid data set {key!r} not found: neither {candidates[0]} nor {candidates[1]} contains "
            f"its raw files ({', '.join(files)}). Copy them into one of these folders; "
            "graph data sets are never downloaded"
        )
    raise DataError(
        f"Planetoid data set {key!r} is incomplete: {best_folder} lacks {', '.join(best_missing)}. "
        "Copy the missing raw files there; graph data sets are never downloaded"
    )


def load_planetoid(name: str, data_dir: str | os.PathLike[str] | None = None):
    """Load a Planetoid graph with PyG's `Planetoid` class from raw files on disk.

    Args:
        name: `cora`, `citeseer` or `pubmed` (any case).
        data_dir: the data folder; see `forwardforward.data.resolve_data_dir`.

    Returns:
        A `torch_geometric.data.Data` with `x` `(num_nodes, num_features)` float32 bag-of-words
        features, `y` `(num_nodes,)` int64 labels and an undirected `edge_index`
        `(2, num_edges)`. The public Planetoid masks are left in place but unused here.

    Raises:
        UsageError: an unknown name, or PyTorch Geometric is not installed.
        DataError: a raw file is missing, or PyG cannot read the files.
    """
    require_torch_geometric()
    from torch_geometric.datasets import Planetoid

    key = _canonical_name(name)
    raw_folder = find_planetoid_raw(key, data_dir)
    with tempfile.TemporaryDirectory(prefix="forwardforward-planetoid-") as staging:
        staged_raw = Path(staging) / PLANETOID_NAMES[key] / "raw"
        staged_raw.mkdir(parents=True)
        for file_name in planetoid_file_names(key):
            os.symlink((raw_folder / file_name).resolve(), staged_raw / file_name)
        try:
            # PyG prints "Processing..." while it converts the files; keep the console clean.
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                dataset = Planetoid(staging, PLANETOID_NAMES[key])
        except Exception as exc:  # PyG and pickle raise many types for damaged files
            raise DataError(f"cannot read the Planetoid files in {raw_folder}: {exc}".splitlines()[0]) from None
        return dataset[0]


@dataclass(frozen=True)
class NodeSplit:
    """Boolean masks `(num_nodes,)` of the training, validation and test nodes."""

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor


def random_node_split(
    num_nodes: int, seed: int, fractions: tuple[float, float, float] = NODE_SPLIT_FRACTIONS
) -> NodeSplit:
    """Split the nodes at random into training, validation and test sets.

    The default fractions are 64/16/20 %. The first two counts are rounded down and the test set
    takes the rest, so every node is in exactly one set.

    Raises:
        UsageError: the fractions are negative or do not sum to 1, or `num_nodes` is below 3.
    """
    if num_nodes < 3:
        raise UsageError(f"a node split needs at least 3 nodes, got num_nodes={num_nodes}")
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise UsageError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(num_nodes, generator=generator)
    num_train = int(fractions[0] * num_nodes)
    num_valid = int(fractions[1] * num_nodes)
    masks = []
    for part in (order[:num_train], order[num_train : num_train + num_valid], order[num_train + num_valid :]):
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[part] = True
        masks.append(mask)
    return NodeSplit(*masks)


def random_link_split(data, seed: int, valid_fraction: float = 0.05, test_fraction: float = 0.10):
    """Split the undirected edges into training, validation and test links with PyG's `RandomLinkSplit`.

    Validation and test sets get one sampled non-edge per held-out edge. Training negatives are
    not fixed here: the trainers draw fresh ones every epoch. The global torch and Python random
    states are restored afterwards, so the split depends on `seed` alone.

    Args:
        data: a graph with an undirected `edge_index`.
        seed: random seed of the split.

    Returns:
        `(train, valid, test)` graphs. Each has `edge_index` (the message-passing edges: training
        edges for train and valid, training plus validation edges for test), `edge_label_index`
        `(2, num_links)` and `edge_label` `(num_links,)` with 1 for edges and 0 for non-edges.
    """
    require_torch_geometric()
    from torch_geometric.transforms import RandomLinkSplit

    python_state = random.getstate()
    try:
        random.seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            split = RandomLinkSplit(
                num_val=valid_fraction, num_test=test_fraction, is_undirected=True,
                add_negative_train_samples=False,
            )
            return split(data.clone())
    finally:
        random.setstate(python_state)
