"""GAN objectives and regularisers, chosen by name in the config.

Each loss turns discriminator outputs into the D loss (real vs fake) and the G loss.
Score maps (PatchGAN) are averaged like single scores.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from prodgen.errors import ProdgenError
from prodgen.metrics.image_statistics import frequency_radii, log_spectrum_gap, mean_log10_gap, power_spectrum, radial_power_spectrum
from prodgen.models.layers import DiscriminatorOutput


class GANLoss:
    """Non-saturating BCE (Goodfellow et al. 2014)."""

    needs_real_for_generator = False

    def discriminator(self, real: DiscriminatorOutput, fake: DiscriminatorOutput) -> torch.Tensor:
        return F.softplus(-real.logits).mean() + F.softplus(fake.logits).mean()

    def generator(self, fake: DiscriminatorOutput, real: DiscriminatorOutput | None = None) -> torch.Tensor:
        return F.softplus(-fake.logits).mean()


class HingeLoss(GANLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018)."""

    def discriminator(self, real, fake):
        return F.relu(1 - real.logits).mean() + F.relu(1 + fake.logits).mean()

    def generator(self, fake, real=None):
        return -fake.logits.mean()


class LeastSquaresLoss(GANLoss):
    """LSGAN (Mao et al. 2017) with targets 1 (real) and 0 (fake)."""

    def discriminator(self, real, fake):
        return 0.5 * ((real.logits - 1) ** 2).mean() + 0.5 * (fake.logits**2).mean()

    def generator(self, fake, real=None):
        return 0.5 * ((fake.logits - 1) ** 2).mean()


class WassersteinLoss(GANLoss):
    """WGAN critic loss; pair it with the gradient penalty (`wgan-gp`, Gulrajani et al. 2017)."""

    def discriminator(self, real, fake):
        return fake.logits.mean() - real.logits.mean()

    def generator(self, fake, real=None):
        return -fake.logits.mean()


def _mixed_rbf_kernel(a: torch.Tensor, b: torch.Tensor, sigmas: tuple[float, ...] = (1, 2, 4, 8, 16)) -> torch.Tensor:
    distances = torch.cdist(a, b).pow(2)
    return sum(torch.exp(-distances / (2 * s * s)) for s in sigmas)


def mmd_squared(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Biased MMD^2 between two feature batches under a mixture of RBF kernels."""
    return _mixed_rbf_kernel(x, x).mean() + _mixed_rbf_kernel(y, y).mean() - 2 * _mixed_rbf_kernel(x, y).mean()


class KernelMMDLoss(GANLoss):
    """MMD GAN (Li et al. 2017; Binkowski et al. 2018): D learns features in which real and fake
    batches differ most under a fixed kernel, G minimises that discrepancy."""

    needs_real_for_generator = True

    def discriminator(self, real, fake):
        return -mmd_squared(real.features, fake.features)

    def generator(self, fake, real=None):
        if real is None:
            raise ValueError("the MMD generator loss needs the real batch's features")
        return mmd_squared(real.features.detach(), fake.features)


LOSSES: dict[str, Callable[[], GANLoss]] = {
    "bce": GANLoss,
    "hinge": HingeLoss,
    "lsgan": LeastSquaresLoss,
    "wgan-gp": WassersteinLoss,
    "mmd": KernelMMDLoss,
}


def build_loss(name: str) -> GANLoss:
    if name not in LOSSES:
        raise ProdgenError(f"Unknown loss {name!r}; choose one of {', '.join(LOSSES)}.")
    return LOSSES[name]()


def _input_gradients(scores: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    (gradients,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
    return gradients.flatten(1)


def gradient_penalty(discriminator, real: torch.Tensor, fake: torch.Tensor, conditions: torch.Tensor | None, alpha: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: (||grad D(x_hat)|| - 1)^2 on interpolates of real and fake, mixed by `alpha` (N, 1, 1, 1) drawn uniformly in [0, 1)."""
    mixed = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    gradients = _input_gradients(discriminator(mixed, conditions).logits, mixed)
    return ((gradients.norm(dim=1) - 1) ** 2).mean()


def r1_penalty(discriminator, real: torch.Tensor, conditions: torch.Tensor | None) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): squared gradient norm of D on real data; the caller scales by gamma/2."""
    real = real.detach().requires_grad_(True)
    gradients = _input_gradients(discriminator(real, conditions).logits, real)
    return gradients.pow(2).sum(dim=1).mean()


def auxiliary_classification_loss(output: DiscriminatorOutput, conditions: torch.Tensor) -> torch.Tensor:
    """AC-GAN (Odena et al. 2017): cross-entropy of each condition's classifier head."""
    return sum(F.cross_entropy(logits, conditions[:, i]) for i, logits in enumerate(output.aux_logits))


def spectral_loss(fake: torch.Tensor, real: torch.Tensor, from_share: float = 0.0, per_frequency: bool = False) -> torch.Tensor:
    """Spectral regularisation (Durall et al. 2020, "Watch your up-convolution"): the gap between the
    generated and the real batch's azimuthally averaged power spectra, log10, as the `spectral` metric
    measures it. The discriminator tolerates a checkerboard's excess at high frequencies or blur's
    deficit for long; this term penalises either from the first step. `from_share` leaves out that
    share of the lowest radii: one batch's low-frequency power is mostly which products and colours
    it drew, which is D's business, not an artefact. `per_frequency` compares the 2-D spectra frequency
    by frequency instead of ring by ring: a ring's average can be met by stripes in one direction
    standing in for power missing in all the others (seen in training), the 2-D spectrum cannot."""
    if per_frequency:
        target, generated = power_spectrum(real).detach(), power_spectrum(fake)
        radius = frequency_radii(*target.shape, device=target.device)
        kept = radius >= 1 + int(from_share * int(radius.max()))
        return mean_log10_gap(generated[kept], target[kept])
    target = radial_power_spectrum(real).detach()
    # at from_share 0.5 on 64-px images, exactly the radii the metric's high-frequency ratio sums (23 of 46)
    return log_spectrum_gap(radial_power_spectrum(fake), target, first_radius=1 + int(from_share * (len(target) - 1)))


def mode_seeking_loss(fake: torch.Tensor, z: torch.Tensor, pool: int = 1, eps: float = 1e-5) -> torch.Tensor:
    """Mode seeking (Mao et al. 2019, MSGAN): rows i and i + n // 2 of `fake` share their conditions
    and differ in z; the loss is the inverse of how far apart they land per unit of z (mean absolute
    difference of the images over that of the codes), so a G that draws each category in a few
    colours, whatever z says, pays for it. D cannot see this collapse: each image alone looks real.
    `pool` > 1 compares the pairs' pool x pool block means instead of their pixels: the variety asked
    for is then colour and shape, and G earns nothing for pixel-scale texture that changes with z."""
    half = len(fake) // 2
    if half == 0:
        raise ValueError("the mode-seeking loss compares pairs of images and needs a batch of at least 2")
    if pool > 1:
        fake = F.avg_pool2d(fake, pool)
    images = (fake[:half] - fake[half : 2 * half]).abs().mean()
    codes = (z[:half] - z[half : 2 * half]).abs().mean()
    return 1 / (images / codes + eps)
