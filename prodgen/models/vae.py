"""The encoder of a variational autoencoder, q(z | x, c) (Kingma & Welling 2014); the decoder is any
registered generator (`dcgan` by default), so a VAE samples, exports and serves like a GAN."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from prodgen.metrics.reconstruction import discretized_gaussian_log_likelihood, gaussian_kl
from prodgen.models.layers import ConditionEmbedding, plan_resolution
from prodgen.models.registry import register_encoder
from prodgen.models.sampling import crop_to


@register_encoder("conv")
class ConvEncoder(nn.Module):
    """Strided convolutions as in the DCGAN discriminator, from the image to the base map, then one
    linear layer to the mean and log-variance of a diagonal Gaussian. Conditions (a conditional VAE)
    are embedded and added to the flattened features, so the latent code need not carry them: decoding
    the same code under another condition changes the category and keeps the rest (`prodgen transfer`).
    One class for every resolution the generators support and 1 or 3 channels."""

    def __init__(self, z_dim: int, channels: int, height: int, width: int, cardinalities: Sequence[int] = (), width_mult: int = 32, **_ignored):
        super().__init__()
        base_h, base_w, doublings = plan_resolution(height, width)
        widths = [width_mult * 2**i for i in range(doublings)]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
        self.net = nn.Sequential(*layers)
        features = widths[-1] * base_h * base_w
        self.embed = ConditionEmbedding(cardinalities, features) if cardinalities else None
        self.heads = nn.Linear(features, 2 * z_dim)
        # start near the prior: small means, unit variances
        nn.init.normal_(self.heads.weight, 0.0, 1e-3)
        nn.init.zeros_(self.heads.bias)

    def forward(self, x: torch.Tensor, conditions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(x).flatten(1)
        if self.embed is not None:
            h = h + self.embed(conditions)
        mean, log_var = self.heads(F.leaky_relu(h, 0.2)).chunk(2, dim=1)
        return mean, log_var.clamp(-12.0, 8.0)


class PixelScale(nn.Module):
    """The decoder's learned noise level: one log standard deviation per channel of a Gaussian around
    the decoded image ("calibrated decoder", Rybkin et al. 2021), so reconstruction and KL are weighed
    by the data instead of a hand-set constant."""

    def __init__(self, channels: int, initial: float = -2.0):
        super().__init__()
        self.log_scale = nn.Parameter(torch.full((channels,), initial))

    def forward(self) -> torch.Tensor:
        return self.log_scale.view(1, -1, 1, 1)


def elbo_terms(encoder: nn.Module, decoder: nn.Module, log_scale: torch.Tensor, images: torch.Tensor, conditions: torch.Tensor | None,
               noise: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ELBO's two terms for images in the model's range, with the posterior sample mean + std * noise:
    (log p(x|z) in nats per image over the `height` x `width` pixels, KL per image, the decoded mean at
    the model's size, z). Training, validation and `prodgen eval autoencoder` share this one definition."""
    mean, log_var = encoder(images, conditions)
    z = mean + (0.5 * log_var).exp() * noise
    decoded = decoder(z, conditions)
    log_px = discretized_gaussian_log_likelihood(crop_to(images, height, width), crop_to(decoded, height, width), log_scale)
    return log_px, gaussian_kl(mean, log_var), decoded, z
