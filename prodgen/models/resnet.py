"""SNGAN / BigGAN-style ResNet generator with class-conditional BatchNorm and a
spectrally normalised projection discriminator (Miyato et al. 2018), with optional
SAGAN self-attention and AC-GAN heads. The default architecture."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from prodgen.models.layers import (
    ConditionalBatchNorm2d,
    DiscriminatorHead,
    DiscriminatorOutput,
    SelfAttention,
    maybe_sn,
    plan_resolution,
)
from prodgen.models.registry import register_discriminator, register_generator


class GeneratorBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, cardinalities: Sequence[int]):
        super().__init__()
        self.norm1 = ConditionalBatchNorm2d(c_in, cardinalities)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.norm2 = ConditionalBatchNorm2d(c_out, cardinalities)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, conditions: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x, conditions)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.norm2(self.conv1(h), conditions)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DiscriminatorBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, down: bool, first: bool, sn: bool):
        super().__init__()
        self.conv1 = maybe_sn(nn.Conv2d(c_in, c_out, 3, 1, 1), sn)
        self.conv2 = maybe_sn(nn.Conv2d(c_out, c_out, 3, 1, 1), sn)
        self.shortcut = maybe_sn(nn.Conv2d(c_in, c_out, 1), sn) if (c_in != c_out or down) else nn.Identity()
        self.down, self.first = down, first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)  # the first block sees images, which need no activation
        h = self.conv2(F.relu(self.conv1(h)))
        shortcut = self.shortcut(x)
        if self.down:
            h, shortcut = F.avg_pool2d(h, 2), F.avg_pool2d(shortcut, 2)
        return h + shortcut


def _widths(base: int, count: int, grow: bool, floor: int = 16) -> list[int]:
    return [base * 2 ** min(i, 3) if grow else max(floor, base // 2**i) for i in range(count)]


@register_generator("resnet")
class ResNetGenerator(nn.Module):
    def __init__(
        self,
        z_dim: int,
        channels: int,
        height: int,
        width: int,
        cardinalities: Sequence[int] = (),
        width_mult: int = 256,
        attention: bool = False,
        **_ignored,
    ):
        super().__init__()
        base_h, base_w, doublings = plan_resolution(height, width)
        self.base = (base_h, base_w)
        self.z_dim = z_dim
        widths = _widths(width_mult, doublings + 1, grow=False)
        self.linear = nn.Linear(z_dim, widths[0] * base_h * base_w)
        self.blocks = nn.ModuleList(GeneratorBlock(a, b, cardinalities) for a, b in zip(widths, widths[1:]))
        # attention at the second-to-last resolution, where it is affordable and sees whole garments
        self.attention = SelfAttention(widths[-2], sn=False) if attention else None
        self.attention_after = len(self.blocks) - 2
        self.out_norm = nn.BatchNorm2d(widths[-1])
        self.out_conv = nn.Conv2d(widths[-1], channels, 3, 1, 1)

    def forward(self, z: torch.Tensor, conditions: torch.Tensor | None = None) -> torch.Tensor:
        h = self.linear(z).view(z.shape[0], -1, *self.base)
        for i, block in enumerate(self.blocks):
            h = block(h, conditions)
            if self.attention is not None and i == self.attention_after:
                h = self.attention(h)
        return torch.tanh(self.out_conv(F.relu(self.out_norm(h))))


@register_discriminator("projection")
class ProjectionDiscriminator(nn.Module):
    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        cardinalities: Sequence[int] = (),
        width_mult: int = 128,
        attention: bool = False,
        auxiliary: bool = False,
        spectral_norm: bool = True,
        **_ignored,
    ):
        super().__init__()
        _, _, doublings = plan_resolution(height, width)
        widths = _widths(width_mult, doublings, grow=True)
        ins = [channels] + widths[:-1]
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(a, b, down=True, first=i == 0, sn=spectral_norm) for i, (a, b) in enumerate(zip(ins, widths))
        )
        self.final = DiscriminatorBlock(widths[-1], widths[-1], down=False, first=False, sn=spectral_norm)
        self.attention = SelfAttention(widths[0], sn=spectral_norm) if attention else None
        self.head = DiscriminatorHead(widths[-1], cardinalities, projection=True, auxiliary=auxiliary, sn=spectral_norm)

    def forward(self, x: torch.Tensor, conditions: torch.Tensor | None = None) -> DiscriminatorOutput:
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if self.attention is not None and i == 0:
                h = self.attention(h)
        pooled = F.relu(self.final(h)).sum(dim=(2, 3))
        return self.head(pooled, conditions)
