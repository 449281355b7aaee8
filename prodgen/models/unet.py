"""The U-Net generator of pix2pix (Isola et al. 2017): an encoder of strided 4x4 convolutions down
to a 1x1 bottleneck (or as far as the image allows), a decoder back up, and a skip connection from
each encoder level to its mirror, so low-level detail (where the edges are) need not squeeze
through the bottleneck. Dropout in the three innermost decoder levels, as in the paper (in training
only here, so a translation is deterministic).

`upsample: resize` doubles with nearest-neighbour resizing and a 3x3 convolution instead of a
transposed convolution, whose uneven overlap paints checkerboards (Odena et al. 2016).
"""

from __future__ import annotations

import torch
from torch import nn

from prodgen.errors import ProdgenError
from prodgen.models.registry import register_translator

MAX_LEVELS = 8  # 256 px -> 1x1, the paper's unet_256
DROPOUT_LEVELS = 3


def unet_levels(height: int, width: int) -> int:
    """How many 2x down-samplings the image allows (both sides stay whole numbers), at most MAX_LEVELS."""
    levels = 0
    while levels < MAX_LEVELS and height % 2 == 0 and width % 2 == 0 and min(height, width) >= 2:
        height, width, levels = height // 2, width // 2, levels + 1
    if levels < 2:
        raise ProdgenError(f"A U-Net needs images whose sides halve at least twice; got {width}x{height}.")
    return levels


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.InstanceNorm2d(channels, affine=True)


def _up(c_in: int, c_out: int, upsample: str) -> nn.Module:
    if upsample == "transposed":
        return nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1))


@register_translator("unet")
class UNet(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, height: int, width: int, width_mult: int = 64, norm: str = "batch",
                 upsample: str = "resize", dropout: float = 0.5):
        super().__init__()
        if norm not in ("batch", "instance") or upsample not in ("transposed", "resize"):
            raise ProdgenError(f"U-Net: norm is batch or instance, upsample transposed or resize; got {norm!r}, {upsample!r}.")
        levels = unet_levels(height, width)
        widths = [width_mult * min(2**i, 8) for i in range(levels)]  # 64, 128, 256, 512, 512, ...
        self.down = nn.ModuleList()
        for i, c_out in enumerate(widths):
            c_in = in_channels if i == 0 else widths[i - 1]
            # no norm on the outermost level (as in the paper) nor on the innermost, whose map may be 1x1
            normalised = 0 < i < levels - 1
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not normalised)]
            if normalised:
                layers.append(_norm(norm, c_out))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for i in reversed(range(levels)):
            c_in = widths[i] if i == levels - 1 else 2 * widths[i]  # the innermost level has no skip to concatenate
            if i == 0:
                self.up.append(nn.Sequential(nn.ReLU(), _up(c_in, out_channels, upsample), nn.Tanh()))
                continue
            layers = [nn.ReLU(), _up(c_in, widths[i - 1], upsample), _norm(norm, widths[i - 1])]
            if levels - 1 - i < DROPOUT_LEVELS and dropout > 0:
                layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(module.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, level in enumerate(self.down):
            x = level(x if i == 0 else nn.functional.leaky_relu(x, 0.2))
            skips.append(x)
        skips.pop()  # the bottleneck itself
        for i, level in enumerate(self.up):
            x = level(x if i == 0 else torch.cat([x, skips.pop()], dim=1))
        return x
