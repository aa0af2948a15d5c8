"""FF training runs with image negatives (corrupted and adversarial) and resumes exactly."""

import pytest
import torch

from forwardforward.config import load_config
from forwardforward.errors import UsageError
from forwardforward.training import train
from forwardforward.training.run import load_training_data
from forwardforward.training.trainer import Trainer

OVERRIDES = (
    "model.hidden=[32,32]",
    "train.epochs=2",
    "train.batch_size=50",
    "train.eval_batch_size=100",
    "data.limit=300",
    "train.device='cpu'",
)


@pytest.mark.parametrize("kind", ["corrupt", "adversarial"])
def test_image_negatives_train_and_read_out(tmp_path, synthetic_data_dir, kind):
    settings = [*OVERRIDES, f"negatives.kind='{kind}'", "train.epochs=6", "train.eval_every=6"]
    config = load_config("ff-negatives-mnist", settings)
    result = train(config, out_dir=tmp_path / "run", data_dir=str(synthetic_data_dir), progress=False)
    # Chance is 90 %; wrong-label negatives reach about 22 % in this setting.
    assert result.final["test/error_softmax"] < 60.0
    assert result.final["layer1/goodness_pos"] > result.final["layer1/goodness_neg"]


def test_adversarial_state_resumes_exactly(synthetic_data_dir):
    config = load_config("ff-negatives-mnist", [*OVERRIDES, "negatives.kind='adversarial'"])
    device = torch.device("cpu")
    data = load_training_data(config, str(synthetic_data_dir), device)
    reference = Trainer(config, data, device)
    reference.train_epoch(progress=False)
    reference.train_epoch(progress=False)
    first = Trainer(config, data, device)
    first.train_epoch(progress=False)
    resumed = Trainer(config, data, device)
    resumed.load_state_dict(first.state_dict())
    resumed.train_epoch(progress=False)
    for a, b in zip(reference.negative_images.parameters(), resumed.negative_images.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(reference.network.parameters(), resumed.network.parameters()):
        assert torch.equal(a, b)


def test_corrupt_rejects_full_mask(synthetic_data_dir):
    config = load_config("ff-negatives-mnist", [*OVERRIDES, "negatives.mask_fraction=1.0"])
    data = load_training_data(config, str(synthetic_data_dir), torch.device("cpu"))
    with pytest.raises(UsageError, match="mask_fraction"):
        Trainer(config, data, torch.device("cpu"))
