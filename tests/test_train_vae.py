"""The VAE and VAE-GAN families on the loop: a few steps on the tiny catalog, the ELBO against a
hand computation, validation, grids, exports, and their config checks."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from prodgen.config import load_config
from prodgen.distributed import DistributedEnv
from prodgen.errors import ProdgenError
from prodgen.generate import ProductGenerator
from prodgen.train import checkpoint as ckpt
from prodgen.train.families.vae import VAE
from prodgen.train.loop import train

from .conftest import with_overrides

TINY_SIZES = {"data": {"catalog": "tiny", "pad_to": None}, "model": {"z_dim": 4, "e_width": 8, "g_width": 8},
              "train": {"batch_size": 8, "steps": 6, "threads": 1, "seed": 2}, "loss": {"kl_warmup": 4},
              "eval": {"every": 3, "samples": 100, "sample_every": 3, "log_every": 1, "checkpoint_every": 3, "keep_last": 2}}


def tiny_vae(preset: str, **overrides):
    tree = load_config(preset).model_dump(mode="json")
    for section, values in TINY_SIZES.items():
        tree[section].update(values)
    if preset.endswith("vaegan"):
        tree["model"]["d_width"] = 8
    return with_overrides(tree, **overrides)


@pytest.mark.parametrize(("preset", "overrides"), [("fmnist-vae", {}), ("fmnist-vaegan", {}),
                                                   ("fmnist-vaegan", {"loss__transfer_weight": 1.0, "loss__ssim_weight": 1.0})])
def test_a_tiny_vae_trains_validates_and_samples(tiny, tmp_path, preset, overrides):
    result = train(tiny_vae(preset, **overrides), runs_root=tmp_path, show_progress=False)
    run = result.run_dir
    assert result.step == 6
    history = json.loads((run / "history.json").read_text())
    assert [row["step"] for row in history] == [3, 6]
    assert all(row["bpd"] > 0 and 0 <= row["recon_mse"] <= 1 and -1 <= row["recon_ssim"] <= 1 for row in history)
    if preset == "fmnist-vaegan":
        assert all(row["fid"] > 0 for row in history) and result.best["metric"] == "fid"
    else:
        assert result.best["metric"] == "bpd" and result.best["value"] == min(row["bpd"] for row in history)
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [row["kl_weight"] for row in rows] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]  # the KL warm-up over 4 steps
    assert all(math.isfinite(row["elbo_bpd"]) for row in rows)
    if "loss__transfer_weight" in overrides:  # the transfer term is logged, and is a classification loss (positive)
        assert all(row["transfer"] > 0 for row in rows)
    if "loss__ssim_weight" in overrides:  # 1 - SSIM of reconstructions that are not yet good
        assert all(0 < row["ssim_loss"] < 2 for row in rows)
    assert (run / "samples" / "step-0000006.png").exists()
    state = ckpt.read_state(run)
    assert state["encoder_network"] == "E_ema" and state["encoder"]["architecture"] == "conv" and len(state["encoder"]["log_scale"]) == 3
    # the decoder samples like any generator
    images = ProductGenerator.load(run).sample(4, {"category": "caps"}, seed=1)
    assert images.shape == (4, 16, 16, 3)


class Fixed(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, *args):
        return self.value


def test_the_elbo_terms_match_a_hand_computation(tiny):
    """One 1x1 grey image, a 1-d latent: log p(x|z) is a Gaussian's mass over the pixel's bin, the KL
    the closed form, both computed here with math.erf."""
    from prodgen.data import load_catalog
    from prodgen.train.data import TrainingData

    config = tiny_vae("fmnist-vae", data__conditions=[])
    family = VAE(config, TrainingData(load_catalog("tiny"), config.data), DistributedEnv())
    family.data.height = family.data.width = 1
    family.data.channels = family.dims = 1
    x_level, mean_pixel, log_scale, mu, log_var = 140, 0.05, math.log(0.1), 0.3, math.log(0.5)
    x = torch.tensor([[[[x_level / 127.5 - 1]]]])
    encoder = Fixed((torch.tensor([[mu]]), torch.tensor([[log_var]])))
    decoder = Fixed(torch.tensor([[[[mean_pixel]]]]))
    scale = Fixed(torch.tensor([[[[log_scale]]]]))
    log_px, kl, _, _ = family.elbo_terms({"E": encoder, "G": decoder, "scale": scale}, x, None, torch.zeros(1, 1))

    def cdf(value):
        return 0.5 * (1 + math.erf((value - mean_pixel) / (0.1 * math.sqrt(2))))

    centre = x_level / 127.5 - 1
    expected_log_px = math.log(cdf(centre + 1 / 255) - cdf(centre - 1 / 255))
    expected_kl = 0.5 * (mu**2 + 0.5 - math.log(0.5) - 1)
    assert log_px.item() == pytest.approx(expected_log_px, rel=1e-4)
    assert kl.item() == pytest.approx(expected_kl, rel=1e-5)


@pytest.mark.parametrize("through_reconstructions", [True, False])
def test_the_adversarial_term_reaches_the_encoder_only_through_reconstructions(tiny, through_reconstructions):
    """With the pixel, feature and KL terms off, the encoder feels the generator loss only through the
    reconstructions it encodes: on with Larsen's default, off with `reconstruction_adversarial: false`.
    The decoder learns from prior samples either way."""
    from prodgen.data import load_catalog
    from prodgen.train.data import TrainingData
    from prodgen.train.families.vaegan import VAEGAN
    from prodgen.train.loop import build_networks
    from prodgen.train.randomness import SharedRandom

    config = tiny_vae("fmnist-vaegan", loss__pixel_weight=0.0, loss__feature_weight=0.0,
                      loss__reconstruction_adversarial=through_reconstructions)
    family = VAEGAN(config, TrainingData(load_catalog("tiny"), config.data), DistributedEnv())
    build_networks(family, say=lambda _: None)
    family.kl_weight = lambda: 0.0
    batch = family.data.batch(torch.arange(8))
    family.train_step(lambda: batch, SharedRandom(0, 0, 1, torch.device("cpu")))

    def gradient_norm(network):
        return sum(p.grad.abs().sum().item() for p in family.nets[network].parameters() if p.grad is not None)

    assert gradient_norm("G") > 0
    assert (gradient_norm("E") > 0) is through_reconstructions


def test_a_vaegan_starts_from_a_trained_vaes_averaged_weights(tiny, tmp_path):
    """Pre-training the autoencoder, then the adversarial fine-tune: `--init-from` a VAE run."""
    from prodgen.data import load_catalog
    from prodgen.train.data import TrainingData
    from prodgen.train.families.vaegan import VAEGAN
    from prodgen.train.loop import build_networks

    source = ckpt.latest_checkpoint(train(tiny_vae("fmnist-vae"), runs_root=tmp_path, show_progress=False).run_dir)
    config = tiny_vae("fmnist-vaegan")
    family = VAEGAN(config, TrainingData(load_catalog("tiny"), config.data), DistributedEnv())
    said = []
    build_networks(family, init_from=source, say=said.append)
    trained = ckpt.read_checkpoint(source).tensors
    for name in ("E", "G", "scale"):
        for key, value in family.nets[name].state_dict().items():
            assert torch.equal(value, trained[f"{name}_ema.{key}"]), f"{name}.{key}"
    assert f"{len(family.nets['D'].state_dict())} tensors kept fresh" in said[0]  # the discriminator, and only it


@pytest.mark.parametrize(
    ("preset", "overrides", "message"),
    [
        ("fmnist-vae", ["eval.metric=fid"], r"eval.metric: a vae model is validated by bpd, not 'fid'"),
        ("fmnist-vae", ["eval.track=[fid]"], r"eval.track: the vae family cannot record 'fid' \(it can: none\)"),
        ("fmnist-vae", ["train.lr_d=1e-3"], r"train.lr_d: the vae family has no discriminator"),
        ("fmnist-vae", ["data.augment=[translation]"], r"data.augment: DiffAugment belongs to a discriminator"),
        ("fmnist-vae", ["model.decoder=nope"], r"model.decoder: unknown generator 'nope'"),
        ("fmnist-vaegan", ["eval.metric=bpd"], r"eval.metric: a vaegan model is validated by fid, kid, swd, not 'bpd'"),
        ("fmnist-vaegan", ["data.conditions=[]"], r"model.auxiliary_weight: AC-GAN heads classify the conditions"),
        ("fmnist-vaegan", ["train.n_dis=2"], r"train.n_dis: the vaegan family has no alternating"),
        ("fmnist-vaegan", ["loss.transfer_weight=1", "model.auxiliary_weight=0"], r"loss.transfer_weight: transferred products are judged by D's AC-GAN"),
        ("fmnist-vae", ["loss.beta=0"], r"loss.beta"),
    ],
)
def test_vae_config_mistakes_are_named(preset, overrides, message):
    with pytest.raises(ProdgenError, match=message):
        load_config(preset, overrides)


def test_beta_vae_and_warm_up_are_config_values():
    config = load_config("fmnist-vae", ["loss.beta=4", "loss.kl_warmup=0"])
    assert config.loss.beta == 4 and config.loss.kl_warmup == 0
