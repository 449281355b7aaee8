"""VAE-GAN: the `vaegan` family (Larsen et al. 2016, "Autoencoding beyond pixels using a learned
similarity metric"). The VAE's decoder is also a GAN's generator: a discriminator judges real images,
reconstructions and samples from the prior, and the reconstruction is measured in the
discriminator's feature space as well as by the VAE's pixel likelihood.

Each step: D learns real against reconstructed and prior samples; then encoder, decoder and the
pixel noise level minimise beta * KL - pixel_weight * log p(x|z) + feature_weight * ||D features of
the reconstruction - D features of the original||^2 + adversarial_weight * (G loss on
reconstructions and prior samples) [+ transfer_weight * AC-GAN loss of products decoded under other
conditions] [+ ssim_weight * (1 - SSIM of the reconstruction)]. Unlike the paper, the encoder and
decoder share one optimiser, so the encoder also feels the adversarial and feature terms through its
reconstructions (the paper stops those at the encoder); one backward pass instead of two. With
`loss.reconstruction_adversarial: false` the adversarial term reaches the decoder through prior
samples only (reconstructions still meet D through the feature term), which keeps reconstructions
closer to their inputs. Validation is by sample quality (FID), as for a GAN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from prodgen.data.catalog import Catalog
from prodgen.losses import auxiliary_classification_loss, build_loss
from prodgen.metrics.reconstruction import bits_per_dim, ssim_torch
from prodgen.models import DISCRIMINATORS, build_discriminator
from prodgen.models.sampling import crop_to
from prodgen.train.data import Batch
from prodgen.train.families import register_family
from prodgen.train.families.vae import VAE, VAELossConfig, VAEModelConfig, ValidationProducts
from prodgen.train.randomness import SharedRandom
from prodgen.train.validation import SELECTION_KEYS, SampleValidator, sample_validator, score_samples


class VAEGANModelConfig(VAEModelConfig):
    discriminator: str = "dcgan"
    d_width: int = Field(32, ge=4, le=2048)
    auxiliary_weight: float = Field(0.0, ge=0.0, description="> 0 adds AC-GAN classifier heads to D with this weight")


class VAEGANLossConfig(VAELossConfig):
    kind: Literal["bce", "hinge", "lsgan"] = "bce"
    pixel_weight: float = Field(1.0, ge=0.0, description="weight of the VAE's pixel log-likelihood")
    feature_weight: float = Field(1.0, ge=0.0, description="weight of the reconstruction error in D's feature space")
    adversarial_weight: float = Field(1.0, ge=0.0, description="weight of the generator's adversarial loss")
    transfer_weight: float = Field(0.0, ge=0.0, description="> 0: products decoded under other conditions (their posterior sample, random "
                                   "training conditions) must be classified as those by D's AC-GAN heads, with this weight (AttGAN's attribute loss)")
    ssim_weight: float = Field(0.0, ge=0.0, description="> 0: also 1 - SSIM between each product and its reconstruction, with this weight "
                               "(structural similarity as a reconstruction loss, Snell et al. 2017)")
    reconstruction_adversarial: bool = Field(True, description="the adversarial loss also reaches the decoder through reconstructions (Larsen et al.); "
                                             "False: through prior samples only, so reconstructions follow the pixel and feature terms alone")


@register_family
class VAEGAN(VAE):
    name = "vaegan"
    model_config = VAEGANModelConfig
    loss_config = VAEGANLossConfig
    metrics = tuple(SELECTION_KEYS)
    trackable_metrics = tuple(SELECTION_KEYS)
    ignored_train_options = {"n_dis": "alternating discriminator updates (one per step)"}

    @classmethod
    def check_config(cls, config) -> list[str]:
        problems = super().check_config(config)
        if config.model.discriminator not in DISCRIMINATORS:
            problems.append(f"model.discriminator: unknown discriminator {config.model.discriminator!r}; registered: {', '.join(sorted(DISCRIMINATORS))}")
        if config.model.auxiliary_weight > 0 and not config.data.conditions:
            problems.append("model.auxiliary_weight: AC-GAN heads classify the conditions, and data.conditions is empty; set it to 0 or add conditions")
        if config.loss.transfer_weight > 0 and config.model.auxiliary_weight == 0:
            problems.append("loss.transfer_weight: transferred products are judged by D's AC-GAN heads; set model.auxiliary_weight > 0 too")
        return problems

    def __init__(self, config, data, env):
        super().__init__(config, data, env)
        self.adversarial = build_loss(config.loss.kind)

    def build_networks(self) -> dict[str, nn.Module]:
        height, width = self.data.model_size
        discriminator = build_discriminator(self.config.model.discriminator, channels=self.data.channels, height=height, width=width,
                                            cardinalities=self.data.conditions.cardinalities, width_mult=self.config.model.d_width,
                                            auxiliary=self.config.model.auxiliary_weight > 0)
        return {**super().build_networks(), "D": discriminator}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        train = self.config.train
        return {**super().build_optimizers(), "opt_d": torch.optim.Adam(self.nets["D"].parameters(), lr=train.lr_d, betas=train.betas)}

    def _auxiliary(self, *pairs) -> torch.Tensor:
        return sum(auxiliary_classification_loss(output, codes) for output, codes in pairs)

    def train_step(self, next_batch: Callable[[], Batch], random: SharedRandom) -> dict[str, float]:
        batch = next_batch()
        real, codes = batch.images, self._codes(batch.codes)
        n, z_dim, loss_config = len(real), self.config.model.z_dim, self.config.loss
        noise, prior_z = random.normal(n, z_dim), random.normal(n, z_dim)
        prior_codes = self._codes(random.rows(self.data.codes, n))
        aux = self.config.model.auxiliary_weight

        # 1. D: real against reconstructions and prior samples (made by the plain networks: no gradients to synchronise)
        D = self.parallel["D"]
        with self.autocast():
            with torch.no_grad():
                _, _, reconstructed, _ = self.elbo_terms(self.nets, real, codes, noise)
                sampled = self.nets["G"](prior_z, prior_codes)
            real_out, rec_out, prior_out = D(real, codes), D(reconstructed, codes), D(sampled, prior_codes)
            d_loss = 0.5 * (self.adversarial.discriminator(real_out, rec_out) + self.adversarial.discriminator(real_out, prior_out))
            if aux > 0:
                d_loss = d_loss + aux * self._auxiliary((real_out, codes), (prior_out, prior_codes))
        self.apply(d_loss, "opt_d")

        # 2. encoder, decoder and noise level, against the plain D (its gradients are not wanted here)
        plain_d = self.nets["D"].requires_grad_(False)
        try:
            with self.autocast():
                log_px, kl, reconstructed, z = self.elbo_terms(self.parallel, real, codes, noise)
                sampled = self.parallel["G"](prior_z, prior_codes)
                with torch.no_grad():
                    real_features = plain_d(real, codes).features
                rec_out, prior_out = plain_d(reconstructed, codes), plain_d(sampled, prior_codes)
                feature_error = (rec_out.features - real_features).pow(2).mean()
                if loss_config.reconstruction_adversarial:
                    adversarial = 0.5 * (self.adversarial.generator(rec_out) + self.adversarial.generator(prior_out))
                else:
                    adversarial = self.adversarial.generator(prior_out)
                if aux > 0:
                    adversarial = adversarial + aux * self._auxiliary((prior_out, prior_codes))
                transfer = torch.zeros((), device=real.device)
                if loss_config.transfer_weight > 0:
                    other_codes = self._codes(random.rows(self.data.codes, n))
                    transfer = self._auxiliary((plain_d(self.parallel["G"](z, other_codes), other_codes), other_codes))
                structure = torch.zeros((), device=real.device)
                if loss_config.ssim_weight > 0:
                    height, width = self.data.height, self.data.width
                    structure = 1 - ssim_torch(crop_to(real, height, width), crop_to(reconstructed, height, width)).mean()
                weight = self.kl_weight()
                vae_term = (weight * kl - loss_config.pixel_weight * log_px).mean() / self.dims
                loss = (vae_term + loss_config.feature_weight * feature_error + loss_config.adversarial_weight * adversarial
                        + loss_config.transfer_weight * transfer + loss_config.ssim_weight * structure)
            self.apply(loss, "opt")
        finally:
            plain_d.requires_grad_(True)
        return {"d_loss": d_loss.item(), "loss": loss.item(), "elbo_bpd": bits_per_dim((kl - log_px).mean().item(), self.dims),
                "kl": kl.mean().item(), "feature_error": feature_error.item(), "g_adv": adversarial.item(), "transfer": transfer.item(), "kl_weight": weight,
                "ssim_loss": structure.item()}

    def make_validator(self, catalog: Catalog, say: Callable[[str], None]) -> tuple[SampleValidator, ValidationProducts]:
        return sample_validator(self.config, self.data, catalog, say), self.validation_products(catalog, self.config.eval.samples)

    def validate(self, validator: tuple[SampleValidator, ValidationProducts]) -> dict[str, float]:
        """Sample quality picks the checkpoint; the ELBO and reconstruction error are logged beside it."""
        samples, products = validator
        scores = self.negative_elbo(products)
        scores.update(score_samples(samples, self.nets["G_ema"], self.spec, self.config))
        return scores
