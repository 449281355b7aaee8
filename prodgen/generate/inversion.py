"""GAN inversion: the latent code from which a generator draws a given product photo, found by
optimisation (Zhu et al. 2016; Abdal et al. 2019). The loss is perceptual, in the catalog feature
network's space (its three convolution stages, each position's channel vector unit-normalised as in
LPIPS, without learned weights), plus a pixel term and a small pull toward the prior's typical shell.
Several random starts per photo, the best kept; a model with an encoder (VAE-GAN) starts from its
posterior mean instead, which is closer and needs fewer steps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from prodgen.generate.pipeline import ProductGenerator
from prodgen.metrics.features import FeatureCNN, load_feature_network
from prodgen.metrics.reconstruction import mse, ssim
from prodgen.models.sampling import crop_to, to_model_range

PIXEL_WEIGHT = 1.0
PRIOR_WEIGHT = 1e-3


@dataclass
class Inversion:
    z: torch.Tensor  # (N, z_dim), the best code per photo
    codes: torch.Tensor  # the conditions it was drawn under
    images: np.ndarray  # uint8 (N, H, W, C): the generator's drawing of each photo
    loss: np.ndarray  # the final objective per photo
    pixel_mse: np.ndarray  # [0, 1] units, against the preprocessed photo
    ssim: np.ndarray


class PerceptualDistance(nn.Module):
    """Mean squared distance between unit-normalised activations of the feature network's stages."""

    def __init__(self, network: FeatureCNN, input_size: tuple[int, int]):
        super().__init__()
        self.body, self.input_size = network.body.eval().requires_grad_(False), input_size
        self.taps = [i for i, layer in enumerate(self.body) if isinstance(layer, nn.ReLU)]

    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        if tuple(x.shape[2:]) != tuple(self.input_size):
            x = F.interpolate(x, size=self.input_size, mode="area")
        found = []
        for i, layer in enumerate(self.body):
            x = layer(x)
            if i in self.taps:
                found.append(F.normalize(x, dim=1))
            if i == self.taps[-1]:
                break
        return found

    def forward(self, x: torch.Tensor, target: list[torch.Tensor]) -> torch.Tensor:
        """Per image."""
        return sum((a - b).pow(2).sum(dim=1).mean(dim=(1, 2)) for a, b in zip(self.activations(x), target)) / len(target)


def invert(generator: ProductGenerator, photos: np.ndarray, codes: torch.Tensor, steps: int = 300, restarts: int = 8,
           start: torch.Tensor | None = None, seed: int = 0, lr: float = 0.05) -> Inversion:
    """Codes that draw `photos` (uint8, preprocessed like the catalog) under the conditions `codes`.
    `start` (N, z_dim) replaces the random starts with one given start per photo (an encoder's)."""
    spec = generator.spec
    height, width, _ = spec["output_size"]
    z_dim = spec["arguments"]["z_dim"]
    features = load_feature_network(spec["catalog"])
    distance = PerceptualDistance(features.model, features.input_size)
    module = generator.module
    target_pixels = to_model_range(torch.from_numpy(np.ascontiguousarray(photos)), None, 0.0)
    with torch.no_grad():
        target_features = distance.activations(target_pixels)
    n = len(photos)
    tries = 1 if start is not None else restarts
    if start is not None:
        z = start.clone()
    else:
        z = torch.randn(n * tries, z_dim, generator=torch.Generator().manual_seed(seed))
    z.requires_grad_(True)
    repeat = torch.arange(n).repeat_interleave(tries)
    conditions = codes[repeat] if codes.shape[1] else None
    targets = [t[repeat] for t in target_features]
    pixels = target_pixels[repeat]
    optimiser = torch.optim.Adam([z], lr=lr)

    def objective() -> torch.Tensor:
        drawn = crop_to(module(z, conditions), height, width)
        pixel = (drawn - pixels).pow(2).mean(dim=(1, 2, 3))
        shell = (z.pow(2).mean(dim=1) - 1).pow(2)  # a Gaussian code's squared norm is about z_dim
        return distance(drawn, targets) + PIXEL_WEIGHT * pixel + PRIOR_WEIGHT * shell

    for _ in range(steps):
        optimiser.zero_grad(set_to_none=True)
        objective().sum().backward()
        optimiser.step()
    with torch.no_grad():
        final = objective().view(n, tries)
        best = final.argmin(dim=1)
        chosen = z.detach().view(n, tries, z_dim)[torch.arange(n), best]
    images = generator.draw(chosen, codes)
    return Inversion(chosen, codes, images, final[torch.arange(n), best].numpy(), mse(photos, images), ssim(photos, images))
