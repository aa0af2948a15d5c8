"""A small hand-made Planetoid data set in the raw format that PyG's `Planetoid` class reads."""

import pickle
from collections import defaultdict

import numpy as np

NUM_CLASSES = 3
NUM_FEATURES = 12
NUM_LABELLED = 15
# PyG's reader takes the 500 nodes after the labelled ones as its public validation set, so the
# non-test part needs at least NUM_LABELLED + 500 nodes.
NUM_ALLX = 530
NUM_TEST = 40
NUM_NODES = NUM_ALLX + NUM_TEST


def make_planetoid_arrays(seed=0):
    """Return features, labels and an undirected edge list of a learnable graph.

    Class c switches on features 4c to 4c + 3 more often than the others, and nodes link mostly
    within their class, so two GNN layers classify the nodes well above chance.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, size=NUM_NODES)
    features = (rng.random((NUM_NODES, NUM_FEATURES)) < 0.15).astype(np.float32)
    for c in range(NUM_CLASSES):
        rows = labels == c
        features[np.ix_(rows, range(4 * c, 4 * c + 4))] = (rng.random((rows.sum(), 4)) < 0.6)
    edges = set()
    for i in range(NUM_NODES):
        same = np.flatnonzero(labels == labels[i])
        for j in rng.choice(same, size=2):
            if i != j:
                edges.add((min(i, j), max(i, j)))
        j = int(rng.integers(NUM_NODES))
        if i != j:
            edges.add((min(i, j), max(i, j)))
    return features, labels, sorted(edges)


def write_planetoid(folder, name="cora", seed=0, skip=()):
    """Write the eight `ind.<name>.*` files into `folder`, leaving out the extensions in `skip`."""
    from scipy import sparse

    folder.mkdir(parents=True, exist_ok=True)
    features, labels, edges = make_planetoid_arrays(seed)
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    # Test nodes come last in PyG's node order; test.index lists their ids, here NUM_ALLX onwards.
    graph = defaultdict(list)
    for i, j in edges:
        graph[i].append(j)
        graph[j].append(i)
    arrays = {
        "x": sparse.csr_matrix(features[:NUM_LABELLED]),
        "y": one_hot[:NUM_LABELLED],
        "allx": sparse.csr_matrix(features[:NUM_ALLX]),
        "ally": one_hot[:NUM_ALLX],
        "tx": sparse.csr_matrix(features[NUM_ALLX:]),
        "ty": one_hot[NUM_ALLX:],
        "graph": dict(graph),
    }
    for extension, value in arrays.items():
        if extension in skip:
            continue
        with open(folder / f"ind.{name}.{extension}", "wb") as f:
            pickle.dump(value, f)
    if "test.index" not in skip:
        (folder / f"ind.{name}.test.index").write_text(
            "".join(f"{i}\n" for i in range(NUM_ALLX, NUM_NODES)), encoding="utf-8")
    return labels
