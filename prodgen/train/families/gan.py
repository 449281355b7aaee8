"""Generative adversarial networks: the `gan` family.

Each step updates D `train.n_dis` times on real and generated batches, then G once; the loop
keeps an EMA copy of G (`G_ema`) that makes samples, validation scores and exports. Validation
scores (FID or KID in the catalog's own feature space, val split) choose the best checkpoint.

Small-catalog options: DiffAugment or ADA on everything D sees (`data.augment`, `data.ada_target`),
and a self-supervised D that must also rebuild real images from its features
(`model.self_supervised_weight`, discriminators with decoders: `lightweight`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from prodgen.config import RunConfig, Section
from prodgen.data.catalog import Catalog
from prodgen.imaging import make_grid
from prodgen.losses import auxiliary_classification_loss, build_loss, gradient_penalty, mode_seeking_loss, r1_penalty, spectral_loss
from prodgen.models import DISCRIMINATORS, GENERATORS, build_discriminator
from prodgen.models.layers import UPSAMPLERS
from prodgen.models.lightweight import decoder_targets
from prodgen.models.multiscale import MultiScaleDiscriminator
from prodgen.models.sampling import crop_to, to_uint8
from prodgen.models.spec import build_from_spec
from prodgen.train.augment import AdaptiveAugmentation, diff_augment
from prodgen.train.data import Batch
from prodgen.train.families import register_family
from prodgen.train.family import GRID_COLUMNS, Family, fixed_grid_codes, generator_spec_for
from prodgen.train.randomness import SharedRandom
from prodgen.train.validation import SELECTION_KEYS, SampleValidator, sample_validator, score_samples


class GANModelConfig(Section):
    generator: str = "dcgan"
    discriminator: str = "dcgan"
    z_dim: int = Field(128, ge=2, le=1024)
    g_width: int = Field(64, ge=4, le=2048)
    d_width: int = Field(32, ge=4, le=2048)
    attention: bool = Field(False, description="SAGAN self-attention in G and D (architectures that have it: resnet, projection)")
    auxiliary_weight: float = Field(1.0, ge=0.0, description="> 0 adds AC-GAN classifier heads to D with this weight")
    upsample: str | list[str] | None = Field(
        None, description=f"G's 2x layers: {', '.join(UPSAMPLERS)}, or a list naming each layer, coarsest first; null: the architecture's own"
    )
    d_minibatch_std: int = Field(
        0, ge=0, le=64, description="> 0: D's last feature map gets the spread of the images within groups of this size, against a G that ignores its latent (discriminators that take it)"
    )
    g_full_resolution: bool = Field(
        False, description="G ends with a 3x3 convolution at the output size, after its last 2x layer, instead of drawing the image in that layer (generators that take it)"
    )
    g_fine_noise: bool = Field(
        False, description="G adds per-pixel noise drawn from z, through a learned 3x3 filter, to the image: detail at frequencies nearest resizing cannot draw (generators that take it)"
    )
    self_supervised_weight: float = Field(
        0.0, ge=0.0, description="> 0: D's decoders rebuild each real image and a random quarter of it, an L1 loss of this weight (discriminators with decoders)"
    )
    d_high_frequency: bool = Field(False, description="D also sees where each image holds fine detail, an extra input channel against G's checkerboards (discriminators that take it)")
    d_scales: int = Field(
        1, ge=1, le=4, description="> 1: D also judges the image average-pooled 2x, 4x, ...: one discriminator of the chosen architecture per scale, each scale's score weighing the same in the loss (pix2pixHD), aimed at coarse layout"
    )


class GANLossConfig(Section):
    kind: Literal["bce", "hinge", "lsgan", "wgan-gp", "mmd"] = "bce"
    r1_gamma: float = Field(0.0, ge=0.0)
    gp_weight: float = Field(10.0, ge=0.0, description="weight of the WGAN-GP gradient penalty (loss.kind wgan-gp)")
    spectral_weight: float = Field(0.0, ge=0.0, description="> 0: G also matches the real batch's radial power spectrum (Durall et al. 2020), with this weight")
    spectral_from: float = Field(
        0.0, ge=0.0, lt=1.0, description="the share of radii, from the lowest, the spectral loss leaves out: 0.5 matches only the upper half, where checkerboards sit, and leaves colour and layout to D"
    )
    spectral_per_frequency: bool = Field(
        False, description="the spectral loss compares the 2-D spectra frequency by frequency, not ring by ring, so stripes in one direction cannot stand in for power missing in others"
    )
    mode_seeking_weight: float = Field(
        0.0, ge=0.0, description="> 0: G's batch holds pairs of images of the same conditions from different z, and G is paid, with this weight, for how far apart each pair lands per unit of z (MSGAN, Mao et al. 2019): variety within a category"
    )
    mode_seeking_pool: int = Field(
        1, ge=1, description="> 1: mode seeking compares the pairs' block means over this many pixels a side, so G is paid for variety in colour and shape, not in pixel-scale texture"
    )


def _takes(architecture: type, argument: str) -> bool:
    """Whether an architecture really uses a keyword (they all swallow unknown ones)."""
    return argument in inspect.signature(architecture).parameters


def _taking(table: dict[str, type], argument: str) -> str:
    """The registered architectures that use a keyword, for an error message."""
    return ", ".join(sorted(name for name, architecture in table.items() if _takes(architecture, argument)))


# Options only some architectures build, each named by the keyword the architecture takes for it: when
# set, the chosen architecture must take it (config key, role, keyword, what it lacks, who has it).
OPTIONAL_LAYERS = (
    ("d_minibatch_std", "discriminator", "minibatch_std", "has no such layer", "those that do"),
    ("g_full_resolution", "generator", "full_resolution_layer", "has no such layer", "those that do"),
    ("g_fine_noise", "generator", "fine_noise", "has no such layer", "those that do"),
    ("self_supervised_weight", "discriminator", "decoders", "has no decoders", "those that have"),
    ("d_high_frequency", "discriminator", "high_frequency", "takes no extra input channel", "those that do"),
)


# Options that shape a loss term, meaningless while the term's weight is 0 (config key, what it does, the term, its weight).
LOSS_REFINEMENTS = (
    ("spectral_from", "narrows", "spectral", "spectral_weight"),
    ("spectral_per_frequency", "sharpens", "spectral", "spectral_weight"),
    ("mode_seeking_pool", "pools", "mode-seeking", "mode_seeking_weight"),
)


@register_family
class GAN(Family):
    name = "gan"
    model_config = GANModelConfig
    loss_config = GANLossConfig
    ema = {"G_ema": "G"}
    export_network = "G_ema"
    init_sources = {"G": "G_ema"}
    trackable_metrics = tuple(SELECTION_KEYS)

    @classmethod
    def check_config(cls, config: RunConfig) -> list[str]:
        model, loss = config.model, config.loss
        problems = []
        for kind, table, choice in (("generator", GENERATORS, model.generator), ("discriminator", DISCRIMINATORS, model.discriminator)):
            if choice not in table:
                problems.append(f"model.{kind}: unknown {kind} {choice!r}; registered: {', '.join(sorted(table))}")
            elif model.attention and not _takes(table[choice], "attention"):
                problems.append(f"model.attention: the {choice!r} {kind} has no self-attention layer (those that have one: {_taking(table, 'attention')})")
        if model.upsample is not None:
            unknown = [kind for kind in ([model.upsample] if isinstance(model.upsample, str) else model.upsample) if kind not in UPSAMPLERS]
            if unknown:
                problems.append(f"model.upsample: unknown upsampling {', '.join(map(repr, unknown))}; registered: {', '.join(UPSAMPLERS)}")
            elif model.generator in GENERATORS and not _takes(GENERATORS[model.generator], "upsample"):
                problems.append(f"model.upsample: the {model.generator!r} generator has fixed upsampling layers (those that take one: {_taking(GENERATORS, 'upsample')})")
        for option, kind, keyword, lacks, those in OPTIONAL_LAYERS:
            table, choice = (GENERATORS, model.generator) if kind == "generator" else (DISCRIMINATORS, model.discriminator)
            if getattr(model, option) and choice in table and not _takes(table[choice], keyword):
                problems.append(f"model.{option}: the {choice!r} {kind} {lacks} ({those}: {_taking(table, keyword)})")
        if model.auxiliary_weight > 0 and not config.data.conditions:
            problems.append("model.auxiliary_weight: AC-GAN heads classify the conditions, and data.conditions is empty; set it to 0 or add conditions")
        for option, what, term, weight in LOSS_REFINEMENTS:
            if getattr(loss, option) != GANLossConfig.model_fields[option].default and getattr(loss, weight) == 0:
                problems.append(f"loss.{option}: it {what} the {term} loss, and loss.{weight} is 0; set a weight too")
        if loss.gp_weight != GANLossConfig.model_fields["gp_weight"].default and loss.kind != "wgan-gp":
            problems.append(f"loss.gp_weight: the gradient penalty belongs to loss.kind wgan-gp, not {loss.kind}")
        if config.eval.metric not in SELECTION_KEYS:
            problems.append(f"eval.metric: a GAN is validated by {', '.join(SELECTION_KEYS)}, not {config.eval.metric!r}")
        return problems

    def __init__(self, config, data, env):
        super().__init__(config, data, env)
        options = {"upsample": config.model.upsample} if config.model.upsample is not None else {}
        # a generator's optional layers enter its spec only when set, so earlier models' specs stay as they were
        options.update({keyword: True for option, kind, keyword, *_ in OPTIONAL_LAYERS if kind == "generator" and getattr(config.model, option)})
        self.spec = generator_spec_for(config, data, config.model.generator, config.model.g_width, config.model.attention, **options)
        self.loss = build_loss(config.loss.kind)
        self.conditional = bool(data.conditions.names)
        self.local_batch = config.train.batch_size // env.world_size

    def build_networks(self) -> dict[str, nn.Module]:
        height, width = self.data.model_size
        options = dict(
            channels=self.data.channels,
            height=height,
            width=width,
            cardinalities=self.data.conditions.cardinalities,
            width_mult=self.config.model.d_width,
            attention=self.config.model.attention,
            auxiliary=self.config.model.auxiliary_weight > 0,
            decoders=self.config.model.self_supervised_weight > 0,
            high_frequency=self.config.model.d_high_frequency,
            minibatch_std=self.config.model.d_minibatch_std,
        )
        scales, name = self.config.model.d_scales, self.config.model.discriminator
        discriminator = build_discriminator(name, **options) if scales == 1 else MultiScaleDiscriminator(name, scales, **options)
        return {"G": build_from_spec(self.spec), "D": discriminator}

    def build_state(self) -> dict[str, nn.Module]:
        data = self.config.data
        return {} if data.ada_target is None else {"ada": AdaptiveAugmentation(data.ada_target, data.ada_images)}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        train = self.config.train
        return {
            "opt_g": torch.optim.Adam(self.nets["G"].parameters(), lr=train.lr_g, betas=train.betas),
            "opt_d": torch.optim.Adam(self.nets["D"].parameters(), lr=train.lr_d, betas=train.betas),
        }

    def find_unused_parameters(self, network: str) -> bool:
        # the MMD loss reads D's features, never its score
        return network == "D" and self.config.loss.kind == "mmd"

    # ----- the training step --------------------------------------------------------------------

    def train_step(self, next_batch: Callable[[], Batch], random: SharedRandom) -> dict[str, float]:
        for _ in range(self.config.train.n_dis):
            batch = next_batch()
            logs = self._discriminator_step(batch, random)
        return {**logs, **self._generator_step(batch, random)}

    def _codes(self, codes: torch.Tensor) -> torch.Tensor | None:
        return codes if self.conditional else None

    def _fake(self, generator: nn.Module, n: int, random: SharedRandom, paired: bool = False) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """`n` generated images, their conditions and their z. `paired`: image i and image i + n // 2
        share their conditions for i < n // 2, the pairs the mode-seeking term compares (an odd batch's
        last image has no partner), so the batch draws n - n // 2 rows."""
        z = random.normal(n, self.config.model.z_dim)
        partners = n // 2 if paired else 0
        codes = random.rows(self.data.codes, n - partners)
        if partners:  # rows 0 .. partners - 1 again, in front: row i + partners repeats row i
            codes = torch.cat([codes[:partners], codes])
        conditions = self._codes(codes)
        return generator(z, conditions), conditions, z

    def _augment(self, images: torch.Tensor, random: SharedRandom) -> torch.Tensor:
        ada = self.nets.get("ada")
        return diff_augment(images, self.config.data.augment, random, None if ada is None else ada.probability)

    def _d(self, discriminator: nn.Module, images: torch.Tensor, codes: torch.Tensor | None, random: SharedRandom):
        return discriminator(self._augment(images, random), codes)

    def _discriminator_step(self, batch: Batch, random: SharedRandom) -> dict[str, float]:
        real, real_codes = batch.images, self._codes(batch.codes)
        D = self.parallel["D"]
        self_supervised = self.config.model.self_supervised_weight > 0
        with self.autocast():
            with torch.no_grad():  # the plain G: no gradients, nothing to synchronise
                fake, fake_codes, _ = self._fake(self.nets["G"], len(real), random)
            if self_supervised:
                seen = self._augment(real, random)  # the decoders rebuild the image D saw
                quarters = random.integers(0, 4, len(real))
                real_out = D(seen, real_codes, quarters=quarters)
            else:
                real_out = self._d(D, real, real_codes, random)
            fake_out = self._d(D, fake, fake_codes, random)
            loss = self.loss.discriminator(real_out, fake_out)
            logs = {"d_adv": loss.item()}
            if self_supervised:
                rebuilt = sum(F.l1_loss(decoded, target) for decoded, target in zip(real_out.decoded, decoder_targets(seen, quarters)))
                loss = loss + self.config.model.self_supervised_weight * rebuilt
                logs["d_rebuild"] = rebuilt.item()
            if self.config.model.auxiliary_weight > 0:
                aux = auxiliary_classification_loss(real_out, real_codes) + auxiliary_classification_loss(fake_out, fake_codes)
                loss = loss + self.config.model.auxiliary_weight * aux
                logs["d_aux"] = aux.item()
            if self.config.loss.kind == "wgan-gp":
                penalty = gradient_penalty(D, real, fake, real_codes, random.uniform(len(real), 1, 1, 1))
                loss = loss + self.config.loss.gp_weight * penalty
                logs["d_gp"] = penalty.item()
            if self.config.loss.r1_gamma > 0:
                penalty = r1_penalty(D, real, real_codes)
                loss = loss + 0.5 * self.config.loss.r1_gamma * penalty
                logs["d_r1"] = penalty.item()
        logs["d_loss"] = loss.item()
        self.apply(loss, "opt_d")
        if "ada" in self.nets:
            self.nets["ada"].observe(real_out.logits, self.env)
            logs["ada_p"] = self.nets["ada"].probability
        return logs

    def _generator_step(self, batch: Batch, random: SharedRandom) -> dict[str, float]:
        # the plain D: its gradients are not wanted here, so DDP must not wait for them
        D = self.nets["D"].requires_grad_(False)
        try:
            with self.autocast():
                mode_seeking = self.config.loss.mode_seeking_weight
                fake, fake_codes, z = self._fake(self.parallel["G"], self.local_batch, random, paired=mode_seeking > 0)
                fake_out = self._d(D, fake, fake_codes, random)
                real_out = self._d(D, batch.images, self._codes(batch.codes), random) if self.loss.needs_real_for_generator else None
                loss = self.loss.generator(fake_out, real_out)
                logs = {"g_adv": loss.item()}
                if self.config.model.auxiliary_weight > 0:
                    aux = auxiliary_classification_loss(fake_out, fake_codes)
                    loss = loss + self.config.model.auxiliary_weight * aux
                    logs["g_aux"] = aux.item()
                if self.config.loss.spectral_weight > 0:
                    spectral = spectral_loss(fake, batch.images, self.config.loss.spectral_from, self.config.loss.spectral_per_frequency)
                    loss = loss + self.config.loss.spectral_weight * spectral
                    logs["g_spectral"] = spectral.item()
                if mode_seeking > 0:
                    seeking = mode_seeking_loss(fake, z, self.config.loss.mode_seeking_pool)
                    loss = loss + mode_seeking * seeking
                    logs["g_mode_seeking"] = seeking.item()
            logs["g_loss"] = loss.item()
            self.apply(loss, "opt_g")
            return logs
        finally:
            D.requires_grad_(True)

    # ----- samples, validation, export ----------------------------------------------------------

    def fixed_inputs(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        codes = fixed_grid_codes(self.data, GRID_COLUMNS, generator)
        return {"codes": codes, "z": torch.randn(len(codes), self.config.model.z_dim, generator=generator)}

    @torch.no_grad()
    def sample_grid(self, fixed: dict[str, torch.Tensor]) -> np.ndarray:
        device = self.env.device
        images = self.nets["G_ema"](fixed["z"].to(device), self._codes(fixed["codes"].to(device)))
        height, width, _ = self.spec["output_size"]
        return make_grid(to_uint8(crop_to(images, height, width)), ncols=GRID_COLUMNS)

    def make_validator(self, catalog: Catalog, say: Callable[[str], None]) -> SampleValidator:
        return sample_validator(self.config, self.data, catalog, say)

    def validate(self, validator: SampleValidator) -> dict[str, float]:
        return score_samples(validator, self.nets["G_ema"], self.spec, self.config)

    def inference_spec(self) -> dict[str, Any]:
        return self.spec
