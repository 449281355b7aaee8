"""The classic DCGAN (Radford et al. 2016): the reference baseline.

Generator: transposed convolutions + BatchNorm + ReLU, Tanh output.
Discriminator: strided convolutions + LeakyReLU (BatchNorm inside), no pooling.
Conditions, when given, steer every BatchNorm of G and are projected in D.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from prodgen.models.layers import (
    ConditionalBatchNorm2d,
    ConditionEmbedding,
    DiscriminatorHead,
    DiscriminatorOutput,
    HighFrequencyEnergy,
    LatentPixelNoise,
    MinibatchStandardDeviation,
    SubPixelConvolution,
    build_upsampler,
    maybe_sn,
    per_layer_upsampling,
    plan_resolution,
    project_latent,
)
from prodgen.models.registry import register_discriminator, register_generator


def _init_dcgan(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d) and module.affine:  # conditional norms start at gain 1, bias 0
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, SubPixelConvolution):  # `apply` reaches its convolution first, which the first branch redrew
        module.tie_subpixels_()


class _UpLayer(nn.Module):
    def __init__(self, conv: nn.Module, c_out: int, cardinalities: Sequence[int]):
        super().__init__()
        self.conv = conv
        self.norm = ConditionalBatchNorm2d(c_out, cardinalities)

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    def forward(self, x: torch.Tensor, conditions: torch.Tensor | None) -> torch.Tensor:
        return F.relu(self.norm(self.upsample(x), conditions))


class _ProjectLayer(_UpLayer):
    """The first layer, z -> base map, run as a matrix product (`project_latent`)."""

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        return project_latent(x, self.conv)


@register_generator("dcgan")
class DCGANGenerator(nn.Module):
    """The classic DCGAN when there are no conditions. Conditions steer every BatchNorm (as in the
    SNGAN paper's conditional "standard CNN" generator) and their embedding is also appended to z:
    class-conditional BatchNorm alone starts with identical categories (its category gains begin at
    zero) and had barely separated them after 5-6 minutes of training (benchmarks/RESULTS.md).

    `upsample` names the 2x layers (prodgen.models.layers.UPSAMPLERS): the classic transposed
    convolution, or a resize-convolution that cannot draw checkerboards; a list names each layer,
    coarsest first, the last one drawing the image.

    `full_resolution_layer` ends with one more layer at the output size: the last 2x layer yields
    features (half the channels of the layer before), and a 3x3 convolution draws the image from
    them. Without it, each output pixel is drawn straight from a 2x2 window of the half-size map,
    which leaves little room for detail finer than that window.

    `fine_noise` adds per-pixel noise drawn from z, through a learned filter, to the image before the
    Tanh (LatentPixelNoise): the detail at the highest frequencies that nearest resizing cannot draw."""

    def __init__(
        self,
        z_dim: int,
        channels: int,
        height: int,
        width: int,
        cardinalities: Sequence[int] = (),
        width_mult: int = 64,
        upsample: str | Sequence[str] = "transposed",
        full_resolution_layer: bool = False,
        fine_noise: bool = False,
        **_ignored,
    ):
        super().__init__()
        base_h, base_w, doublings = plan_resolution(height, width)
        self.z_dim = z_dim
        widths = [width_mult * 2 ** (doublings - 1 - i) for i in range(doublings)]
        kinds = per_layer_upsampling(upsample, doublings)
        if full_resolution_layer:
            widths.append(max(4, widths[-1] // 2))
            hidden_kinds, out_kind = kinds, None
        else:
            *hidden_kinds, out_kind = kinds
        self.embed = ConditionEmbedding(cardinalities, z_dim) if cardinalities else None
        project = nn.ConvTranspose2d(z_dim * (2 if cardinalities else 1), widths[0], (base_h, base_w), 1, 0, bias=False)
        self.layers = nn.ModuleList([_ProjectLayer(project, widths[0], cardinalities)])
        self.layers.extend(
            _UpLayer(build_upsampler(kind, c_in, c_out), c_out, cardinalities) for kind, c_in, c_out in zip(hidden_kinds, widths, widths[1:])
        )
        self.out = nn.Conv2d(widths[-1], channels, 3, 1, 1) if out_kind is None else build_upsampler(out_kind, widths[-1], channels)
        self.apply(_init_dcgan)
        self.fine_noise = LatentPixelNoise(z_dim, height, width, channels) if fine_noise else None  # after apply: its filter starts at zero

    def forward(self, z: torch.Tensor, conditions: torch.Tensor | None = None) -> torch.Tensor:
        latent = z
        if self.embed is not None:
            z = torch.cat([z, self.embed(conditions)], dim=1)
        h = z[:, :, None, None]
        for layer in self.layers:
            h = layer(h, conditions)
        image = self.out(h)
        if self.fine_noise is not None:
            image = image + self.fine_noise(latent)
        return torch.tanh(image)


@register_discriminator("dcgan")
class DCGANDiscriminator(nn.Module):
    """With `spectral_norm`, BatchNorm gives way to spectral normalisation: the "standard CNN"
    discriminator of Miyato et al. (2018), cheap on CPUs because it downsamples at once.
    With `high_frequency`, D also sees where each image holds fine detail (HighFrequencyEnergy), an
    extra input channel aimed at G's checkerboards. With `minibatch_std` (a group size), the last
    feature map gets one more channel, the spread of the images within each group
    (MinibatchStandardDeviation), aimed at a generator that draws one image whatever its latent."""

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        cardinalities: Sequence[int] = (),
        width_mult: int = 64,
        auxiliary: bool = False,
        spectral_norm: bool = False,
        high_frequency: bool = False,
        minibatch_std: int = 0,
        **_ignored,
    ):
        super().__init__()
        base_h, base_w, doublings = plan_resolution(height, width)
        widths = [width_mult * 2**i for i in range(doublings)]
        self.high_frequency = HighFrequencyEnergy(channels) if high_frequency else None
        layers: list[nn.Module] = [maybe_sn(nn.Conv2d(channels + (1 if high_frequency else 0), widths[0], 4, 2, 1, bias=spectral_norm), spectral_norm), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [maybe_sn(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=spectral_norm), spectral_norm)]
            layers += [nn.LeakyReLU(0.2, True)] if spectral_norm else [nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
        self.net = nn.Sequential(*layers)
        self.minibatch_std = MinibatchStandardDeviation(minibatch_std) if minibatch_std else None
        # the classic last layer, a convolution over the whole base map, is a linear map of the flattened features
        self.head = DiscriminatorHead((widths[-1] + (1 if minibatch_std else 0)) * base_h * base_w, cardinalities, projection=True, auxiliary=auxiliary, sn=spectral_norm)
        if not spectral_norm:
            self.apply(_init_dcgan)

    def forward(self, x: torch.Tensor, conditions: torch.Tensor | None = None) -> DiscriminatorOutput:
        if self.high_frequency is not None:
            x = torch.cat([x, self.high_frequency(x)], dim=1)
        features = self.net(x)
        if self.minibatch_std is not None:
            features = self.minibatch_std(features)
        return self.head(features.flatten(1), conditions)


@register_discriminator("sn-dcgan")
class SNDCGANDiscriminator(DCGANDiscriminator):
    # the options are named so that configs can tell they are taken (GAN.check_config reads signatures)
    def __init__(self, high_frequency: bool = False, minibatch_std: int = 0, **kwargs):
        super().__init__(**{**kwargs, "spectral_norm": True, "high_frequency": high_frequency, "minibatch_std": minibatch_std})
