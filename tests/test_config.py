"""Config: the pydantic defaults are the default preset, and options the chosen model would
ignore or combinations that cannot work are errors at load time, naming the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from prodgen.config import DEFAULT_PRESET, RESUME_KEYS, default_config, load_config, resume_config
from prodgen.errors import ProdgenError
from prodgen.presets import preset_names


def test_the_pydantic_defaults_are_the_default_preset():
    assert default_config() == load_config(DEFAULT_PRESET)


def test_every_preset_loads():
    assert {"fmnist-cgan", "fmnist-dcgan", "catalog-64"} <= set(preset_names())
    for name in preset_names():
        assert load_config(name).name == name


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.attention=true"], r"model.attention: the 'dcgan' generator has no self-attention layer \(those that have one: resnet\)"),
        (["model.generator=resnet", "model.attention=true"], r"model.attention: the 'dcgan' discriminator has no self-attention layer \(those that have one: projection\)"),
        (["data.conditions=[]"], r"model.auxiliary_weight: AC-GAN heads classify the conditions, and data.conditions is empty"),
        (["loss.gp_weight=5"], r"loss.gp_weight: the gradient penalty belongs to loss.kind wgan-gp, not bce"),
        (["train.lr_schedule=constant", "train.decay_from=0.3"], r"decay_from=0.3 only applies to lr_schedule: linear"),
        (["eval.metric=mse"], r"eval.metric: a GAN is validated by fid, kid, swd, not 'mse'"),
        (["eval.track=[swd, mse]"], r"eval.track: the gan family cannot record 'mse' \(it can: fid, kid, swd\)"),
        (["model.generator=stylegan9"], r"model.generator: unknown generator 'stylegan9'; registered: dcgan, lightweight, resnet"),
        (["family=diffusion"], r"Unknown model family 'diffusion'; registered: .*gan"),
        (["train.lr_g=-1"], "train.lr_g"),
        (["model.colour=red"], "model.colour"),
        (["loss.kind=wasserstein"], "loss.kind"),
        (["train.betas=[0.5, 1.5]"], "betas"),
        (["oops"], "KEY=VALUE"),
    ],
)
def test_config_mistakes_are_errors_naming_the_key(overrides, message):
    with pytest.raises(ProdgenError, match=message):
        load_config(DEFAULT_PRESET, overrides)


def test_working_combinations_stay_allowed():
    assert load_config(DEFAULT_PRESET, ["model.generator=resnet", "model.discriminator=projection", "model.attention=true"]).model.attention
    assert load_config(DEFAULT_PRESET, ["loss.kind=wgan-gp", "loss.gp_weight=5"]).loss.gp_weight == 5
    assert load_config("fmnist-dcgan").model.auxiliary_weight == 0 and load_config("fmnist-dcgan").data.conditions == []


def test_presets_load_and_overrides_apply():
    cfg = load_config(DEFAULT_PRESET, ["train.lr_g=1e-4", "data.augment=[translation, cutout]"])
    assert cfg.train.lr_g == 1e-4 and cfg.data.augment == ["translation", "cutout"]
    assert load_config("catalog-64").data.augment == ["translation", "color", "cutout"]
    with pytest.raises(ProdgenError, match="Unknown preset"):
        load_config("fmnist-nope")


def test_a_resume_takes_only_the_allowed_keys():
    saved = load_config(DEFAULT_PRESET, ["train.steps=400", "eval.checkpoint_every=100"])
    resumed = resume_config(saved, ["train.steps=800", "train.threads=1"])
    assert resumed.train.steps == 800 and resumed.train.threads == 1 and resumed.eval.checkpoint_every == 100
    assert "train.threads" in RESUME_KEYS
    with pytest.raises(ProdgenError, match=r"may only change .* \(not model.z_dim=64\)"):
        resume_config(saved, ["model.z_dim=64"])


def test_the_command_line_turns_a_config_error_into_exit_code_2():
    run = subprocess.run([sys.executable, "-m", "prodgen.cli", "train", "--set", "model.attention=true", "--dry-run"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "model.attention" in run.stderr and "Traceback" not in run.stderr
