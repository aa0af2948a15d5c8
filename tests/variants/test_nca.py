"""Tests of the cellular automaton: perception, masks, locality across steps, runs and frames."""

import json

import pytest
import torch

from forwardforward.baselines.nca_bptt import BPTTCellularAutomaton
from forwardforward.cli import main
from forwardforward.config import config_from_dict, load_config
from forwardforward.errors import UsageError
from forwardforward.layers import group_mean
from forwardforward.plotting import plot_run
from forwardforward.training import train
from forwardforward.variants.nca import (
    CellGrid,
    FFCellularAutomaton,
    alive_cells,
    crop_center,
    live_indices,
    perceive,
    perception_filters,
    update_mask,
)
from forwardforward.variants.nca_trainer import build_nca_trainer

TINY = [
    "data.train_limit=60", "data.eval_limit=20", "model.hidden=[12,6]", "train.steps=3",
    "train.epochs=2", "train.samples_per_epoch=40", "train.batch_size=20", "train.eval_every=1",
    "train.eval_batch_size=10", "train.device='cpu'",
]


def test_perception_matches_hand_computed_values():
    # One channel, value = 10 * row + column on a 3 x 3 grid, zero beyond the border.
    state = torch.tensor([[0.0, 1.0, 2.0], [10.0, 11.0, 12.0], [20.0, 21.0, 22.0]]).view(1, 1, 3, 3)
    features = perceive(state)
    assert features.shape == (1, 3, 3, 3)
    identity, sobel_x, sobel_y = features[0, 0], features[0, 1], features[0, 2]
    assert torch.equal(identity, state[0, 0])
    # Centre: columns differ by 1 in each of the 3 rows (weights 1, 2, 1), divided by 8.
    assert sobel_x[1, 1].item() == pytest.approx((1 * 2 + 2 * 2 + 1 * 2) / 8)
    assert sobel_y[1, 1].item() == pytest.approx((1 * 20 + 2 * 20 + 1 * 20) / 8)
    # Top-left corner: the padded zeros count. x: (1*1 + 2*11 ... ) right column minus zeros.
    assert sobel_x[0, 0].item() == pytest.approx((2 * 1 + 1 * 11) / 8)
    assert sobel_y[0, 0].item() == pytest.approx((2 * 10 + 1 * 11) / 8)


def test_perception_filters_layout():
    filters = perception_filters(2)
    assert filters.shape == (6, 1, 3, 3)
    assert torch.equal(filters[0], filters[3])  # identity of channel 0 and of channel 1
    assert filters[1, 0, 1, 2].item() == pytest.approx(2 / 8)  # Sobel x: right neighbour
    assert filters[2, 0, 2, 1].item() == pytest.approx(2 / 8)  # Sobel y: neighbour below
    with pytest.raises(UsageError, match="at least one channel"):
        perception_filters(0)


def test_update_mask_rate_and_support():
    alive = torch.zeros(20, 30, 30, dtype=torch.bool)
    alive[:, 5:25, 5:25] = True
    generator = torch.Generator().manual_seed(0)
    mask = update_mask(alive, 0.3, generator)
    rate = mask[alive].float().mean().item()
    assert rate == pytest.approx(0.3, abs=0.01)  # 8,000 live cells: standard error 0.005
    assert not mask[~alive].any()
    assert update_mask(alive, 1.0, generator).equal(alive)


def test_alive_cells_threshold_and_dilation():
    images = torch.zeros(1, 1, 5, 5)
    images[0, 0, 2, 2] = 0.5
    assert alive_cells(images, 0.1).sum().item() == 1
    assert alive_cells(images, 0.6).sum().item() == 0
    assert alive_cells(images, 0.1, dilation=1).sum().item() == 9


def test_crop_center_and_bad_crop():
    images = torch.arange(2 * 28 * 28, dtype=torch.float32).view(2, 784)
    grids = crop_center(images, (1, 28, 28), 20)
    assert grids.shape == (2, 1, 20, 20)
    assert grids[0, 0, 0, 0].item() == 4 * 28 + 4
    with pytest.raises(UsageError, match="does not fit"):
        crop_center(images, (1, 28, 28), 29)


def _grids(batch=4, size=8):
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(batch, 1, size, size, generator=generator)
    return images, alive_cells(images, 0.3)


def test_ff_step_passes_no_gradient_across_steps():
    images, alive = _grids()
    model = FFCellularAutomaton(10, (12, 6))
    for block in model.blocks:
        block.configure_optimizer(load_config("nca-mnist-selfclassify").optimizer)
    cells = live_indices(alive)
    labels = torch.arange(4)
    state_pos = model.grid.initial_state(images, alive, labels).requires_grad_(True)
    state_neg = model.grid.initial_state(images, alive, (labels + 1) % 10).requires_grad_(True)
    next_pos, next_neg, stats = model.train_step(state_pos, state_neg, cells, update_mask(alive, 1.0))
    assert next_pos.grad_fn is None
    assert not next_pos.requires_grad
    assert next_neg.grad_fn is None
    assert not next_neg.requires_grad
    assert state_pos.grad is None  # the step's losses never reached its input
    assert state_neg.grad is None
    assert stats.shape == (2, 3)
    # The hidden channels of updated cells changed, and empty cells stayed empty.
    assert not torch.equal(next_pos[:, 11:], state_pos.detach()[:, 11:])
    assert next_pos.permute(0, 2, 3, 1)[~alive].abs().sum().item() == 0


def test_bptt_gradient_reaches_first_step():
    images, alive = _grids()
    model = BPTTCellularAutomaton(10, (12, 6))
    logits, cells = model.unroll(images, alive, steps=3, rate=1.0, generator=None)
    first_layer = model.layers[0].weight
    # The last step's logits depend on the weights through the earlier steps' states.
    (grad,) = torch.autograd.grad(logits[-1].sum(), first_layer)
    assert grad.abs().sum().item() > 0
    assert logits.shape == (3, cells.numel(), 10)


def test_group_mean():
    values = torch.tensor([1.0, 3.0, 10.0, 4.0])
    groups = torch.tensor([0, 0, 2, 2])
    assert group_mean(values, groups).tolist() == [2.0, 0.0, 7.0]
    with pytest.raises(ValueError, match="one group index per row"):
        group_mean(values, groups[:3])


def test_config_rejects_bad_values():
    values = {"variant": "nca", "train": {"steps": 4, "eval_first": 3, "eval_last": 2}}
    with pytest.raises(UsageError, match="eval_first"):
        config_from_dict(values)
    with pytest.raises(UsageError, match="update_rate"):
        config_from_dict({"variant": "nca", "model": {"update_rate": 0.0}})
    with pytest.raises(UsageError, match="trainer"):
        config_from_dict({"variant": "nca", "trainer": "bptt"})
    with pytest.raises(UsageError, match="unknown recipe key"):
        config_from_dict({"variant": "nca", "model": {"hiden": [4]}})
    with pytest.raises(UsageError, match="hidden_state"):
        config_from_dict({"variant": "nca", "model": {"hidden_state": "first"}})
    with pytest.raises(UsageError, match="feature_norm"):
        config_from_dict({"variant": "nca", "model": {"feature_norm": "layer"}})
    with pytest.raises(UsageError, match="negatives.kind"):
        config_from_dict({"variant": "nca", "negatives": {"kind": "hybrid"}})
    with pytest.raises(UsageError, match="negatives.temperature"):
        config_from_dict({"variant": "nca", "negatives": {"temperature": 0.0}})
    with pytest.raises(UsageError, match="score_steps"):
        config_from_dict({"variant": "nca", "train": {"steps": 4}, "negatives": {"score_steps": 5}})


@pytest.mark.parametrize("recipe", ["nca-mnist-selfclassify", "nca-mnist-bptt"])
def test_run_reports_image_and_cell_metrics(recipe, synthetic_data_dir, tmp_path):
    config = load_config(recipe, TINY)
    result = train(config, out_dir=tmp_path / "run", data_dir=str(synthetic_data_dir), progress=False)
    method = "goodness" if config.trainer == "ff" else "softmax"
    for key in (f"test/error_{method}", "test/cell_accuracy", "test/cell_agreement", "test/error_step3",
                "test/cell_accuracy_step3"):
        assert 0.0 <= result.final[key] <= 100.0, key
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in records] == [1, 2]
    assert records[0]["train_samples"] == 40


def test_resume_matches_uninterrupted_run(synthetic_data_dir, tmp_path):
    config = load_config("nca-mnist-selfclassify", TINY)
    full = train(config, out_dir=tmp_path / "full", data_dir=str(synthetic_data_dir), progress=False)
    one = load_config("nca-mnist-selfclassify", [*TINY, "train.epochs=1"])
    part = tmp_path / "part"
    train(one, out_dir=part, data_dir=str(synthetic_data_dir), progress=False)
    # Continue the one-epoch run as a two-epoch run: same config except the epoch count.
    saved = json.loads((part / "config.json").read_text())
    saved["train"]["epochs"] = 2
    (part / "config.json").write_text(json.dumps(saved))
    resumed = train(resume=part, data_dir=str(synthetic_data_dir), progress=False)
    assert resumed.final["test/error_goodness"] == full.final["test/error_goodness"]
    assert resumed.final["layer1/loss"] == pytest.approx(full.final["layer1/loss"], rel=1e-5)


def test_plot_writes_prediction_frames(synthetic_data_dir, tmp_path):
    pytest.importorskip("matplotlib")
    config = load_config("nca-mnist-selfclassify", [*TINY, "train.epochs=1"])
    run = train(config, out_dir=tmp_path / "run", data_dir=str(synthetic_data_dir), progress=False)
    assert main(["plot", str(run.run_dir), "--out", str(tmp_path / "plots")]) == 0
    frames = sorted((tmp_path / "plots" / "nca_frames").glob("step*.png"))
    assert [p.name for p in frames] == ["step01.png", "step02.png", "step03.png"]
    for frame in frames:
        assert frame.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = plot_run(run.run_dir, tmp_path / "again")
    assert "nca_frame_step3" in result.written
    assert main(["compare", str(run.run_dir)]) == 0


def test_shared_belief_channels_hold_probabilities():
    images, alive = _grids()
    model = FFCellularAutomaton(10, (12, 6), share_belief=True)
    assert model.grid.hidden_channels == 6 + 2
    cells = live_indices(alive)
    state = model.grid.initial_state(images, alive, torch.arange(4))
    acts = model.activities(model.grid.cell_features(state, cells))
    hidden = model.next_hidden(acts)
    assert hidden.shape == (cells.numel(), 8)
    beliefs = hidden[:, 6:]
    assert ((beliefs >= 0) & (beliefs <= 1)).all()
    expected = torch.sigmoid(acts[0].square().sum(1) - model.blocks[0].threshold)
    assert torch.allclose(beliefs[:, 0], expected)
    result = model.trajectory(images, alive, steps=2, rate=1.0, generator=None)
    assert result.scores.shape == (2, 4, 10)


def test_hidden_state_all_writes_every_block():
    images, alive = _grids()
    model = FFCellularAutomaton(10, (12, 6), hidden_state="all")
    assert model.grid.hidden_channels == 12 + 6
    assert model.blocks[0].module.in_features == 3 * (1 + 10 + 18)
    cells = live_indices(alive)
    state = model.grid.initial_state(images, alive, torch.arange(4))
    acts = model.activities(model.grid.cell_features(state, cells))
    hidden = model.next_hidden(acts)
    assert hidden.shape == (cells.numel(), 18)
    # Each block's part is length-normalised on its own: root mean square 1 where it is active.
    for part in (hidden[:, :12], hidden[:, 12:]):
        rms = part.square().mean(1).sqrt()
        active = rms > 0
        assert active.any()
        assert torch.allclose(rms[active], torch.ones_like(rms[active]), atol=1e-4)
    with pytest.raises(UsageError, match="hidden_state"):
        FFCellularAutomaton(10, (12, 6), hidden_state="both")


def test_hard_negatives_pick_top_scoring_wrong_label(synthetic_data_dir):
    settings = [*TINY, "negatives.kind='hard'", "negatives.temperature=1e-6"]
    trainer = build_nca_trainer(load_config("nca-mnist-selfclassify", settings), str(synthetic_data_dir),
                                torch.device("cpu"))
    grids, alive = trainer.grids(trainer.data.train_images[:20])
    labels = trainer.data.train_labels[:20]
    wrong = trainer.wrong_labels(grids, alive, labels)
    assert wrong.shape == labels.shape
    assert not (wrong == labels).any()
    # Step 1 starts from empty hidden channels, so its scores do not depend on the update mask.
    scores = trainer.model.trajectory(grids, alive, 1, 1.0, None).scores[0]  # (batch, classes)
    scores = scores / alive.sum((1, 2)).clamp(min=1)[:, None]
    scores[torch.arange(20), labels] = float("-inf")
    assert torch.equal(wrong, scores.argmax(1))


def test_hard_negative_run_reports_suffix_errors(synthetic_data_dir, tmp_path):
    settings = [*TINY, "negatives.kind='hard'", "negatives.score_steps=2", "model.hidden_state='all'",
                "model.objective='symba'"]
    result = train(load_config("nca-mnist-selfclassify", settings), out_dir=tmp_path / "run",
                   data_dir=str(synthetic_data_dir), progress=False)
    final = result.final
    # Prediction sums steps 1 to 3 (eval_first = 1), which is what error_from_step1 scores too.
    assert final["test/error_from_step1"] == final["test/error_goodness"]
    assert final["test/error_from_step3"] == final["test/error_step3"]
    assert 0.0 <= final["test/error_from_step2"] <= 100.0


def test_split_feature_norm_keeps_input_scale():
    images, alive = _grids()
    cells = live_indices(alive)
    model = FFCellularAutomaton(10, (12, 6), feature_norm="split")
    state = model.grid.initial_state(images, alive, torch.arange(4))
    first = model.normalize_features(model.grid.cell_features(state, cells))
    assert first.shape == (cells.numel(), 3 * (1 + 10 + 6))
    assert first[:, 33:].abs().sum().item() == 0  # empty hidden channels stay zero
    # Fill the hidden channels: the pixel and label part keeps its normalised values.
    filled = state.clone()
    filled[:, 11:] = 5.0 * alive.unsqueeze(1)
    later = model.normalize_features(model.grid.cell_features(filled, cells))
    assert torch.allclose(later[:, :33], first[:, :33])
    rms = later[:, 33:].square().mean(1).sqrt()
    assert torch.allclose(rms, torch.ones_like(rms), atol=1e-4)
    joint = FFCellularAutomaton(10, (12, 6))
    shrunk = joint.normalize_features(joint.grid.cell_features(filled, cells))[:, :33]
    assert shrunk.norm() < first[:, :33].norm()
    with pytest.raises(UsageError, match="feature_norm"):
        FFCellularAutomaton(10, (12, 6), feature_norm="layer")


def test_damping_mixes_old_and_new_state():
    images, alive = _grids()
    cells = live_indices(alive)
    grid = CellGrid(10, 6, damping=0.3)
    state = grid.initial_state(images, alive, torch.arange(4))
    state[:, 11:] = 2.0 * alive.unsqueeze(1)  # old hidden state: 2 in every live cell
    hidden = torch.ones(cells.numel(), 6)
    mask = alive.clone()
    mask[0] = False  # grid 0 keeps its state at this step
    updating = mask[1:].unsqueeze(1).expand(-1, 6, -1, -1)  # hidden channels of the updating cells

    new = grid.write_hidden(state, cells, hidden, mask)
    # An updating cell takes 0.3 * 2 + 0.7 * 1, and a cell outside the mask keeps 2.
    assert torch.allclose(new[1:, 11:][updating], torch.tensor(1.3))
    assert torch.equal(new[0], state[0])
    assert torch.equal(new[:, :11], state[:, :11])  # pixel and label channels never change

    undamped = CellGrid(10, 6).write_hidden(state, cells, hidden, mask)
    assert torch.allclose(undamped[1:, 11:][updating], torch.tensor(1.0))
    assert BPTTCellularAutomaton(10, (12, 6), damping=0.3).grid.damping == 0.3


def test_damping_rejects_out_of_range():
    for bad in (-0.1, 1.0):
        with pytest.raises(UsageError, match="damping"):
            CellGrid(10, 6, damping=bad)
    with pytest.raises(UsageError, match="model.damping"):
        config_from_dict({"variant": "nca", "model": {"damping": 1.0}})
