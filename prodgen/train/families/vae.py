"""Variational autoencoders: the `vae` family (Kingma & Welling 2014). With `data.conditions` it is a
conditional VAE (Sohn et al. 2015: encoder and decoder both see the conditions); with `loss.beta`
other than 1 a beta-VAE (Higgins et al. 2017), with an optional linear KL warm-up.

The decoder is a registered generator (`dcgan` by default) whose output is the mean of a discretised
Gaussian over the 256 pixel levels, with a learned noise level per channel (a calibrated decoder), so
the ELBO is a true bound on the log-likelihood of 8-bit images and bits per dimension mean what they
say. Validation: the negative ELBO in bits per dimension on fixed val products (`eval.metric: bpd`).
The loop keeps EMA copies of encoder, decoder and noise level; those are what inference loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import nn

from prodgen.config import RunConfig, Section, TrainConfig
from prodgen.data.catalog import Catalog
from prodgen.imaging import make_grid
from prodgen.metrics.reconstruction import bits_per_dim, mse, ssim
from prodgen.models import ENCODERS, GENERATORS, build_encoder
from prodgen.models.sampling import crop_to, to_uint8
from prodgen.models.spec import build_from_spec
from prodgen.models.vae import PixelScale, elbo_terms
from prodgen.train.data import Batch, TrainingData
from prodgen.train.families import register_family
from prodgen.train.family import GRID_COLUMNS, Family, fixed_grid_codes, generator_spec_for
from prodgen.train.randomness import SharedRandom

RECONSTRUCTED_PRODUCTS = 10  # fixed val products shown above their reconstructions in every sample grid


class VAEModelConfig(Section):
    encoder: str = "conv"
    decoder: str = Field("dcgan", description="a registered generator: the decoder samples like a GAN's generator")
    z_dim: int = Field(32, ge=1, le=1024)
    e_width: int = Field(32, ge=4, le=2048, description="channels of the encoder's first layer, doubled at each halving")
    g_width: int = Field(64, ge=4, le=2048)


class VAELossConfig(Section):
    beta: float = Field(1.0, gt=0, description="weight of the KL term: 1 is the ELBO, above 1 a beta-VAE")
    kl_warmup: int = Field(0, ge=0, description="steps over which the KL weight rises linearly from 0 to beta (0: none)")


@dataclass
class ValidationProducts:
    """Fixed val products scored every evaluation, with fixed encoder noise."""

    images: torch.Tensor
    codes: torch.Tensor
    noise: torch.Tensor


def ignored_train_options(config: RunConfig, ignored: dict[str, str]) -> list[str]:
    """Options of the shared train section a family has no use for, set to something other than their default."""
    defaults = TrainConfig.model_fields
    return [f"train.{key}: the {config.family} family has no {what}" for key, what in ignored.items() if getattr(config.train, key) != defaults[key].default]


@register_family
class VAE(Family):
    name = "vae"
    model_config = VAEModelConfig
    loss_config = VAELossConfig
    ema = {"E_ema": "E", "G_ema": "G", "scale_ema": "scale"}
    export_network = "G_ema"
    encoder_network = "E_ema"
    # fine-tuning starts from the averaged weights, which are what the run's validation scored (e.g.
    # a VAE-GAN initialised from a trained VAE: its discriminator starts fresh)
    init_sources = {"E": "E_ema", "G": "G_ema", "scale": "scale_ema"}
    metrics: tuple[str, ...] = ("bpd",)
    ignored_train_options = {"lr_d": "discriminator", "n_dis": "discriminator"}

    @classmethod
    def check_config(cls, config: RunConfig) -> list[str]:
        model = config.model
        problems = []
        if model.encoder not in ENCODERS:
            problems.append(f"model.encoder: unknown encoder {model.encoder!r}; registered: {', '.join(sorted(ENCODERS))}")
        if model.decoder not in GENERATORS:
            problems.append(f"model.decoder: unknown generator {model.decoder!r}; registered: {', '.join(sorted(GENERATORS))}")
        if config.eval.metric not in cls.metrics:
            problems.append(f"eval.metric: a {config.family} model is validated by {', '.join(cls.metrics)}, not {config.eval.metric!r}")
        if config.data.augment:
            problems.append(f"data.augment: DiffAugment belongs to a discriminator; the {config.family} family would reconstruct augmented images")
        return problems + ignored_train_options(config, cls.ignored_train_options)

    def __init__(self, config, data, env):
        super().__init__(config, data, env)
        self.spec = generator_spec_for(config, data, config.model.decoder, config.model.g_width)
        self.conditional = bool(data.conditions.names)
        self.dims = data.height * data.width * data.channels  # the catalog's pixels, padding excluded
        self.local_batch = config.train.batch_size // env.world_size

    def build_networks(self) -> dict[str, nn.Module]:
        height, width = self.data.model_size
        encoder = build_encoder(self.config.model.encoder, z_dim=self.config.model.z_dim, channels=self.data.channels, height=height, width=width,
                                cardinalities=self.data.conditions.cardinalities, width_mult=self.config.model.e_width)
        return {"E": encoder, "G": build_from_spec(self.spec), "scale": PixelScale(self.data.channels)}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        train = self.config.train
        parameters = [p for name in ("E", "G", "scale") for p in self.nets[name].parameters()]
        return {"opt": torch.optim.Adam(parameters, lr=train.lr_g, betas=train.betas)}

    # ----- the training step --------------------------------------------------------------------

    def _codes(self, codes: torch.Tensor) -> torch.Tensor | None:
        return codes if self.conditional else None

    def kl_weight(self) -> float:
        warmup = self.config.loss.kl_warmup
        return self.config.loss.beta * (min(1.0, (self.step + 1) / warmup) if warmup else 1.0)

    def elbo_terms(self, nets: dict[str, nn.Module], images: torch.Tensor, codes: torch.Tensor | None, noise: torch.Tensor):
        """(log p(x|z) in nats per image, KL per image, the decoded mean at the model's size, the posterior sample z)."""
        return elbo_terms(nets["E"], nets["G"], nets["scale"](), images, codes, noise, self.data.height, self.data.width)

    def train_step(self, next_batch: Callable[[], Batch], random: SharedRandom) -> dict[str, float]:
        batch = next_batch()
        with self.autocast():
            log_px, kl, _, _ = self.elbo_terms(self.parallel, batch.images, self._codes(batch.codes), random.normal(len(batch.images), self.config.model.z_dim))
            weight = self.kl_weight()
            loss = (weight * kl - log_px).mean() / self.dims
        self.apply(loss, "opt")
        return {"loss": loss.item(), "elbo_bpd": bits_per_dim((kl - log_px).mean().item(), self.dims), "kl": kl.mean().item(),
                "recon_nll": -log_px.mean().item(), "kl_weight": weight}

    # ----- samples, validation, export ----------------------------------------------------------

    def make_validator(self, catalog: Catalog, say: Callable[[str], None]) -> Any:
        return self.validation_products(catalog, self.config.eval.samples)

    def validation_products(self, catalog: Catalog, count: int) -> ValidationProducts:
        val = TrainingData(catalog, self.config.data, split="val")
        generator = torch.Generator().manual_seed(self.config.train.seed)
        positions = torch.randperm(len(val), generator=generator)[:count].sort().values
        batch = val.batch(positions)
        return ValidationProducts(batch.images, batch.codes, torch.randn(len(positions), self.config.model.z_dim, generator=generator))

    @torch.no_grad()
    def negative_elbo(self, products: ValidationProducts, batch_size: int = 500) -> dict[str, float]:
        """Negative ELBO (nats and bits per dimension), its KL term, and the MSE and SSIM of the EMA networks'
        reconstructions (decoded from the posterior mean, as `prodgen reconstruct` does)."""
        nets = {name: self.nets[f"{name}_ema"] for name in ("E", "G", "scale")}
        device = self.env.device
        sums = {"log_px": 0.0, "kl": 0.0}
        originals, reconstructions = [], []
        height, width = self.data.height, self.data.width
        for start in range(0, len(products.images), batch_size):
            images = products.images[start : start + batch_size].to(device)
            codes = self._codes(products.codes[start : start + batch_size].to(device))
            log_px, kl, _, _ = self.elbo_terms(nets, images, codes, products.noise[start : start + batch_size].to(device))
            sums["log_px"] += log_px.sum().item()
            sums["kl"] += kl.sum().item()
            originals.append(to_uint8(crop_to(images, height, width)))
            reconstructions.append(to_uint8(crop_to(nets["G"](nets["E"](images, codes)[0], codes), height, width)))  # from the posterior mean
        n = len(products.images)
        nats = (sums["kl"] - sums["log_px"]) / n
        originals, reconstructions = np.concatenate(originals), np.concatenate(reconstructions)
        return {"bpd": bits_per_dim(nats, self.dims), "negative_elbo_nats": nats, "kl": sums["kl"] / n,
                "recon_mse": float(mse(originals, reconstructions).mean()), "recon_ssim": float(ssim(originals, reconstructions).mean())}

    def validate(self, validator: ValidationProducts) -> dict[str, float]:
        scores = self.negative_elbo(validator)
        scores["selection"] = scores["bpd"]
        return scores

    def fixed_inputs(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        codes = fixed_grid_codes(self.data, GRID_COLUMNS, generator)
        val = TrainingData(self.data.catalog, self.config.data, split="val")
        shown = val.batch(torch.randperm(len(val), generator=generator)[:RECONSTRUCTED_PRODUCTS])
        return {"codes": codes, "z": torch.randn(len(codes), self.config.model.z_dim, generator=generator), "products": shown.images, "product_codes": shown.codes}

    @torch.no_grad()
    def sample_grid(self, fixed: dict[str, torch.Tensor]) -> np.ndarray:
        """Samples from the prior, a row per category; then fixed val products above their reconstructions."""
        device = self.env.device
        height, width = self.data.height, self.data.width
        samples = self.nets["G_ema"](fixed["z"].to(device), self._codes(fixed["codes"].to(device)))
        products, codes = fixed["products"].to(device), self._codes(fixed["product_codes"].to(device))
        reconstructed = self.nets["G_ema"](self.nets["E_ema"](products, codes)[0], codes)
        rows = [to_uint8(crop_to(images, height, width)) for images in (samples, products, reconstructed)]
        return make_grid(np.concatenate(rows), ncols=GRID_COLUMNS)

    def inference_spec(self) -> dict[str, Any]:
        return self.spec

    def encoder_spec(self) -> dict[str, Any]:
        height, width = self.data.model_size
        return {
            "architecture": self.config.model.encoder,
            "arguments": {"z_dim": self.config.model.z_dim, "channels": self.data.channels, "height": height, "width": width,
                          "cardinalities": self.data.conditions.cardinalities, "width_mult": self.config.model.e_width},
            "conditions": self.data.conditions.to_json(),
            "catalog": self.config.data.catalog,
            "input_size": [self.data.height, self.data.width, self.data.channels],
            "pad_to": self.config.data.pad_to,
            "background": self.data.background,
            "preprocessing": self.data.preprocessing,
            "log_scale": self.nets["scale_ema"].log_scale.detach().cpu().tolist(),
        }
