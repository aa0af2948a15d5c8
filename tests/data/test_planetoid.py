"""Planetoid loading through PyG: folder layouts, missing files, no downloads, and the splits."""

import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("torch_geometric")
pytest.importorskip("scipy")

from graph_helpers import NUM_FEATURES, NUM_NODES, write_planetoid  # noqa: E402

from forwardforward.data.planetoid import (  # noqa: E402
    find_planetoid_raw,
    load_planetoid,
    planetoid_file_names,
    random_link_split,
    random_node_split,
)
from forwardforward.errors import DataError, UsageError  # noqa: E402

SHARED_DATA = os.environ.get("FORWARDFORWARD_DATA", "")
REAL_RAW = Path(SHARED_DATA) / "planetoid" / "raw" if SHARED_DATA else None


def test_flat_layout_loads(tmp_path):
    labels = write_planetoid(tmp_path / "planetoid" / "raw")
    data = load_planetoid("cora", tmp_path)
    assert data.x.shape == (NUM_NODES, NUM_FEATURES)
    assert torch.equal(data.y, torch.as_tensor(labels))
    assert data.is_undirected()


def test_pyg_layout_loads_and_wins(tmp_path):
    write_planetoid(tmp_path / "planetoid" / "CiteSeer" / "raw", name="citeseer", seed=1)
    write_planetoid(tmp_path / "planetoid" / "raw", name="citeseer", seed=2)
    assert find_planetoid_raw("CiteSeer", tmp_path) == tmp_path / "planetoid" / "CiteSeer" / "raw"
    data = load_planetoid("CITESEER", tmp_path)
    assert data.num_nodes == NUM_NODES


def test_loading_leaves_data_folder_unchanged(tmp_path):
    raw = tmp_path / "planetoid" / "raw"
    write_planetoid(raw)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    load_planetoid("cora", tmp_path)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_missing_file_named_and_no_download(tmp_path, monkeypatch):
    write_planetoid(tmp_path / "planetoid" / "raw", name="pubmed", skip=("allx",))

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr("torch_geometric.datasets.Planetoid.download", refuse)
    with pytest.raises(DataError) as excinfo:
        load_planetoid("pubmed", tmp_path)
    message = str(excinfo.value)
    assert "ind.pubmed.allx" in message
    assert str(tmp_path / "planetoid" / "raw") in message
    assert "ind.pubmed.x," not in message  # only the missing file is listed


def test_absent_data_set_lists_folders(tmp_path):
    with pytest.raises(DataError) as excinfo:
        load_planetoid("cora", tmp_path)
    assert str(tmp_path / "planetoid" / "Cora" / "raw") in str(excinfo.value)
    assert "never downloaded" in str(excinfo.value)


def test_unknown_name_rejected(tmp_path):
    with pytest.raises(UsageError, match="choose one of cora, citeseer, pubmed"):
        load_planetoid("reddit", tmp_path)


def test_corrupt_file_raises_data_error(tmp_path):
    raw = tmp_path / "planetoid" / "raw"
    write_planetoid(raw)
    (raw / "ind.cora.graph").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="cannot read the Planetoid files"):
        load_planetoid("cora", tmp_path)


def test_file_names():
    assert planetoid_file_names("Cora")[0] == "ind.cora.x"
    assert len(planetoid_file_names("pubmed")) == 8


def test_node_split_fractions_and_seed():
    split = random_node_split(1000, seed=3)
    assert int(split.train.sum()) == 640
    assert int(split.valid.sum()) == 160
    assert int(split.test.sum()) == 200
    assert not (split.train & split.valid).any()
    assert not (split.train & split.test).any()
    assert not (split.valid & split.test).any()
    again = random_node_split(1000, seed=3)
    assert torch.equal(split.train, again.train)
    other = random_node_split(1000, seed=4)
    assert not torch.equal(split.train, other.train)


def test_node_split_rejects_bad_fractions():
    with pytest.raises(UsageError, match="sum to 1"):
        random_node_split(100, seed=0, fractions=(0.5, 0.5, 0.5))
    with pytest.raises(UsageError, match="at least 3 nodes"):
        random_node_split(2, seed=0)


def test_link_split_is_seeded_and_disjoint(tmp_path):
    write_planetoid(tmp_path / "planetoid" / "raw")
    data = load_planetoid("cora", tmp_path)
    state = torch.random.get_rng_state()
    train, valid, test = random_link_split(data, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global state is restored
    train2, valid2, _ = random_link_split(data, seed=5)
    assert torch.equal(valid.edge_label_index, valid2.edge_label_index)
    assert set(valid.edge_label.tolist()) == {0.0, 1.0}
    held_out = {tuple(e) for e in valid.edge_label_index[:, valid.edge_label == 1].t().tolist()}
    message_passing = {tuple(e) for e in train.edge_index.t().tolist()}
    assert not held_out & message_passing
    assert test.edge_index.shape[1] > train.edge_index.shape[1]


@pytest.mark.skipif(REAL_RAW is None or not (REAL_RAW / "ind.cora.x").is_file(),
                    reason="real Planetoid files not in FORWARDFORWARD_DATA")
def test_real_cora_and_pubmed():
    data = load_planetoid("cora", REAL_RAW.parent.parent)
    assert data.x.shape == (2708, 1433)
    assert int(data.y.max()) + 1 == 7
    if not (REAL_RAW / "ind.pubmed.allx").exists():
        with pytest.raises(DataError, match="ind.pubmed.allx"):
            load_planetoid("pubmed", REAL_RAW.parent.parent)
