"""The lightweight GAN of Liu et al. (2021, "Towards faster and stabilized GAN training for
high-fidelity few-shot image synthesis", a.k.a. FastGAN), scaled to CPU budgets: made for
catalogs of a few hundred to a few thousand photos.

Generator: resize-convolution blocks with gated linear units, and skip-layer excitation (SLE):
a low-resolution map gates the channels of a high-resolution one, so the coarse layout steers the
fine layers through a short gradient path.
Discriminator: residual down blocks, and small decoders that must rebuild the real image (whole,
at low resolution) and a random quarter of it from D's own feature maps: a self-supervised task
that forces D to keep the features a product is made of, not a few memorised cues.
Conditions steer G's BatchNorms (and join z) and are projected in D, as in the other architectures.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from prodgen.errors import ProdgenError
from prodgen.models.layers import (
    ConditionalBatchNorm2d,
    ConditionEmbedding,
    DiscriminatorHead,
    DiscriminatorOutput,
    build_upsampler,
    per_layer_upsampling,
    plan_resolution,
    project_latent,
)
from prodgen.models.registry import register_discriminator, register_generator

# Where SLE gates: (low-resolution block, high-resolution block), counted from the base map. The
# paper pairs 8->128, 16->256 and so on (a factor of 16); at 64 px that is the base map gating the
# last block but one, and the second map gating the last.
SLE_SPAN = 3


class _SkipLayerExcitation(nn.Module):
    """SLE: pool the low-resolution map to 4x4, squeeze it to one gate per high-resolution channel."""

    def __init__(self, c_low: int, c_high: int):
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(4),
            nn.Conv2d(c_low, c_high, 4, 1, 0, bias=False),
            nn.SiLU(),
            nn.Conv2d(c_high, c_high, 1, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return high * self.gate(low)


class _GatedUpBlock(nn.Module):
    """2x upsampling to twice the channels, conditional BatchNorm, then a GLU halves them again."""

    def __init__(self, c_in: int, c_out: int, upsample: str, cardinalities: Sequence[int]):
        super().__init__()
        self.up = build_upsampler(upsample, c_in, 2 * c_out)
        self.norm = ConditionalBatchNorm2d(2 * c_out, cardinalities)

    def forward(self, x: torch.Tensor, conditions: torch.Tensor | None) -> torch.Tensor:
        return F.glu(self.norm(self.up(x), conditions), dim=1)


def _generator_widths(width_mult: int, count: int) -> list[int]:
    """Channels per resolution, from the base map up: 8w, 4w, 2w, w, w/2 (at least 8)."""
    return [max(8, width_mult * 8 // 2**i) for i in range(count)]


@register_generator("lightweight")
class LightweightGenerator(nn.Module):
    def __init__(
        self,
        z_dim: int,
        channels: int,
        height: int,
        width: int,
        cardinalities: Sequence[int] = (),
        width_mult: int = 16,
        upsample: str | Sequence[str] = "nearest",
        **_ignored,
    ):
        super().__init__()
        base_h, base_w, doublings = plan_resolution(height, width)
        self.z_dim = z_dim
        widths = _generator_widths(width_mult, doublings + 1)
        self.embed = ConditionEmbedding(cardinalities, z_dim) if cardinalities else None
        self.project = nn.ConvTranspose2d(z_dim * (2 if cardinalities else 1), 2 * widths[0], (base_h, base_w), 1, 0, bias=False)
        self.project_norm = ConditionalBatchNorm2d(2 * widths[0], cardinalities)
        kinds = per_layer_upsampling(upsample, doublings)
        self.blocks = nn.ModuleList(_GatedUpBlock(a, b, kind, cardinalities) for kind, a, b in zip(kinds, widths, widths[1:]))
        # block i's output (resolution index i + 1) gates block i + SLE_SPAN's output
        self.excite = nn.ModuleDict(
            {str(i + SLE_SPAN): _SkipLayerExcitation(widths[i], widths[i + SLE_SPAN]) for i in range(doublings + 1 - SLE_SPAN)}
        )
        self.out = nn.Conv2d(widths[-1], channels, 3, 1, 1)

    def forward(self, z: torch.Tensor, conditions: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(conditions)], dim=1)
        maps = [F.glu(self.project_norm(project_latent(z, self.project), conditions), dim=1)]
        for i, block in enumerate(self.blocks, start=1):
            h = block(maps[-1], conditions)
            if str(i) in self.excite:
                h = self.excite[str(i)](maps[i - SLE_SPAN], h)
            maps.append(h)
        return torch.tanh(self.out(maps[-1]))


class _DownBlock(nn.Module):
    """Two paths averaged, as in the paper's DownBlockComp: a strided 4x4 then 3x3 convolution, and
    an average pool with a 1x1 convolution that keeps the gradient path short."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.main = nn.Sequential(
            sn(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2), sn(nn.Conv2d(c_out, c_out, 3, 1, 1)), nn.LeakyReLU(0.2)
        )
        self.direct = nn.Sequential(nn.AvgPool2d(2), sn(nn.Conv2d(c_in, c_out, 1)), nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.direct(x)) / 2


class _Decoder(nn.Module):
    """A small image decoder on D's feature map (the self-supervised task); not spectrally
    normalised, as in the paper: it is trained by reconstruction alone."""

    def __init__(self, c_in: int, channels: int, doublings: int, width: int):
        super().__init__()
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(8)]
        c = c_in
        for _ in range(doublings):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, 2 * width, 3, 1, 1, bias=False), nn.BatchNorm2d(2 * width), nn.GLU(dim=1)]
            c = width
        layers += [nn.Conv2d(c, channels, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# the decoders rebuild 32x32 images from 8x8 maps
DECODED_SIDE = 32


@register_discriminator("lightweight")
class LightweightDiscriminator(nn.Module):
    """`decoders=True` adds the self-supervised decoders (images of at least 32 px); `forward(..., quarters=Q)` (Q: one index
    0-3 per image, which quarter to rebuild) then returns them in `DiscriminatorOutput.decoded`:
    (whole image at 32x32, the chosen quarter at 32x32). Only real images are decoded."""

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        cardinalities: Sequence[int] = (),
        width_mult: int = 16,
        auxiliary: bool = False,
        decoders: bool = False,
        **_ignored,
    ):
        super().__init__()
        base_h, base_w, doublings = plan_resolution(height, width)
        if decoders and min(height, width) < 4 * 8:
            raise ProdgenError(f"The lightweight discriminator's decoders need images of at least 32x32, not {width}x{height}.")
        widths = [width_mult * 2 ** min(i, 4) for i in range(doublings)]
        self.stem = nn.Sequential(nn.utils.parametrizations.spectral_norm(nn.Conv2d(channels, widths[0], 3, 1, 1)), nn.LeakyReLU(0.2))
        self.blocks = nn.ModuleList(_DownBlock(a, b) for a, b in zip([widths[0], *widths], widths))
        # the paper decodes its 8x8 map whole and a quarter of its 16x16 map: here the smallest maps of at least those sides
        sides = [min(height, width) // 2 ** (i + 1) for i in range(doublings)]
        self.decoders = None
        if decoders:
            whole = max(i for i, side in enumerate(sides) if side >= 8)
            part = max(i for i, side in enumerate(sides) if side >= 16)
            self.decoded_from = (whole, part)
            self.decoders = nn.ModuleList(_Decoder(widths[i], channels, 2, width_mult) for i in (whole, part))
        self.head = DiscriminatorHead(widths[-1] * base_h * base_w, cardinalities, projection=True, auxiliary=auxiliary, sn=True)

    def forward(self, x: torch.Tensor, conditions: torch.Tensor | None = None, quarters: torch.Tensor | None = None) -> DiscriminatorOutput:
        maps, h = [], self.stem(x)
        for block in self.blocks:
            h = block(h)
            maps.append(h)
        output = self.head(h.flatten(1), conditions)
        if quarters is None or self.decoders is None:
            return output
        whole_map, part_map = maps[self.decoded_from[0]], maps[self.decoded_from[1]]
        return DiscriminatorOutput(output.logits, output.features, output.aux_logits, (self.decoders[0](whole_map), self.decoders[1](quarter_of(part_map, quarters))))


def quarter_of(images: torch.Tensor, quarters: torch.Tensor) -> torch.Tensor:
    """Each image's quarter (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right)."""
    h, w = images.shape[2] // 2, images.shape[3] // 2
    corners = torch.stack([images[:, :, :h, :w], images[:, :, :h, w:], images[:, :, h:, :w], images[:, :, h:, w:]], dim=1)
    return corners[torch.arange(len(images), device=images.device), quarters]


def decoder_targets(real: torch.Tensor, quarters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What the decoders must rebuild: the whole image and the chosen quarter, each at 32x32."""
    size = (DECODED_SIDE, DECODED_SIDE)
    return F.interpolate(real, size=size, mode="area"), F.interpolate(quarter_of(real, quarters), size=size, mode="area")
