"""SimCLR pre-training of the feature network: loss, augmentations, pre-training and `fit-features --pretrain`."""

import json
import math

import numpy as np
import pytest
import torch

from prodgen.data.catalog import Catalog, load_catalog, save_catalog
from prodgen.metrics.features import FeatureCNN, fit_feature_network, load_feature_network_from
from prodgen.metrics.self_supervised import augment_view, nt_xent_loss, pretrain_simclr

from .conftest import cli_error, invoke


def test_nt_xent_matches_a_hand_computation_on_two_pairs():
    # Views e1, e2 | e1, e2: each view's partner has cosine 1, the two others cosine 0.
    views = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert nt_xent_loss(views, views, 0.5).item() == pytest.approx(math.log(1 + 2 * math.exp(-2)))
    # Partners swapped: each partner has cosine 0 and one impostor cosine 1.
    assert nt_xent_loss(views, views.flip(0), 0.5).item() == pytest.approx(math.log(2 + math.exp(2)))
    # Only directions count.
    assert nt_xent_loss(3 * views, views, 0.5).item() == pytest.approx(math.log(1 + 2 * math.exp(-2)))


def test_nt_xent_is_near_zero_for_separated_pairs_and_large_when_shuffled():
    separated = torch.eye(8)
    assert nt_xent_loss(separated, separated, 0.05).item() < 1e-6
    shuffled = separated[torch.tensor([1, 2, 3, 4, 5, 6, 7, 0])]
    assert nt_xent_loss(separated, shuffled, 0.05).item() > 19.0  # about 1 / temperature


@pytest.mark.parametrize("channels", [1, 3])
def test_augmentation_is_reproducible_for_a_seed_and_changes_the_image(channels):
    images = torch.rand(6, channels, 16, 16) * 2 - 1

    def view(seed: int) -> torch.Tensor:
        return augment_view(images, torch.Generator().manual_seed(seed))

    first = view(0)
    assert first.shape == images.shape and first.min() >= -1.0 and first.max() <= 1.0
    assert torch.equal(first, view(0))
    assert not torch.allclose(first, view(1))
    assert (first - images).abs().amax(dim=(1, 2, 3)).min() > 0.05  # every image changed


def _photos(count: int, size: int = 16) -> np.ndarray:
    """Coloured squares at random places on white: distinct enough for SimCLR to tell apart."""
    rng = np.random.default_rng(0)
    images = np.full((count, size, size, 3), 240, np.uint8)
    for image in images:
        y, x = rng.integers(0, size // 2, size=2)
        image[y : y + size // 2, x : x + size // 2] = rng.integers(0, 200, size=3)
    return images


def test_tiny_pretraining_lowers_the_contrastive_loss():
    torch.set_num_threads(1)
    model = FeatureCNN(3, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = pretrain_simclr(model, _photos(64), (16, 16), epochs=12, batch_size=32, seed=0, show_progress=False)
    losses = [row["contrastive_loss"] for row in result.history]
    assert len(losses) == 12 and result.images == 64
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.15
    assert not torch.equal(model.body[0].weight, before["body.0.weight"])
    assert torch.equal(model.head[2].weight, before["head.2.weight"])  # the classifier head is the supervised stage's


def _save_variant(name: str, images: np.ndarray) -> None:
    splits = ("train", "val", "test")
    entries = [{"category": ("boots", "caps")[i % 2], "split": splits[i % 3]} for i in range(len(images))]
    save_catalog(Catalog(name=name, images=images, categories=["boots", "caps"], entries=entries))


def test_fit_features_with_simclr_records_the_pretraining_and_loads(tiny, tmp_path):
    _save_variant("tiny-extra", _photos(30))
    out = tmp_path / "net"
    result = invoke("eval", "fit-features", "--data", "tiny", "--epochs", 1, "--pretrain", "simclr", "--pretrain-epochs", 2,
                    "--temperature", 0.3, "--extra-data", "tiny-extra", "--out", out)
    assert result.exit_code == 0, result.output
    assert "simclr" in result.output
    config = json.loads((out / "config.json").read_text())
    facts = config["pretraining"]
    tiny_catalog = load_catalog("tiny")
    unlabelled = sum(len(tiny_catalog.split_indices(split)) for split in ("train", "val")) + 20  # tiny-extra: 10 train + 10 val
    assert facts["method"] == "simclr" and facts["epochs"] == 2 and facts["temperature"] == 0.3
    assert facts["images"] == unlabelled and facts["catalogs"] == ["tiny", "tiny-extra"] and facts["seconds"] >= 0
    assert "--pretrain simclr" in config["training_command"] and "--extra-data tiny-extra" in config["training_command"]
    network = load_feature_network_from(out)
    assert network.extract(tiny_catalog.subset("test")[0][:3]).features.shape == (3, 128)


def test_fit_features_rejects_bad_extra_data(tiny, tmp_path):
    _save_variant("tiny-small", _photos(30, size=8))
    _save_variant("tiny-grey", _photos(30)[..., :1])
    out = str(tmp_path / "net")
    pretrain = ("eval", "fit-features", "--data", "tiny", "--pretrain", "simclr", "--out", out)
    assert "no-such" in cli_error(*pretrain, "--extra-data", "no-such")
    assert "8x8" in cli_error(*pretrain, "--extra-data", "tiny-small")
    assert "1 channels" in cli_error(*pretrain, "--extra-data", "tiny-grey")
    assert "catalog being fitted" in cli_error(*pretrain, "--extra-data", "tiny")
    assert "--pretrain simclr" in cli_error("eval", "fit-features", "--data", "tiny", "--extra-data", "tiny-small", "--out", out)
    assert "byol" in cli_error("eval", "fit-features", "--data", "tiny", "--pretrain", "byol", "--out", out)


def test_pretraining_leaves_out_copies_of_test_photos_from_extra_catalogs(tiny, tmp_path):
    catalog = load_catalog("tiny")
    # The same photos prepared again (as a white-background version would be), all in its train split.
    copy = Catalog(name="tiny-copy", images=np.array(catalog.images), categories=catalog.categories,
                   entries=[{**entry, "split": "train"} for entry in catalog.entries])
    network = fit_feature_network(catalog, directory=tmp_path / "net", epochs=1, pretrain="simclr", pretrain_epochs=1,
                                  extra_catalogs=[copy], show_progress=False)
    facts = network.config["pretraining"]
    tests = len(catalog.split_indices("test"))
    assert facts["excluded_test_photos"] == tests
    assert facts["images"] == 2 * (len(catalog.images) - tests)
