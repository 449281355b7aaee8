"""PatchGAN (N-layer) discriminator of pix2pix (Isola et al. 2017): one realness score per
overlapping patch, which judges texture and local detail rather than global layout."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from prodgen.models.layers import DiscriminatorHead, DiscriminatorOutput, maybe_sn
from prodgen.models.registry import register_discriminator


@register_discriminator("patchgan")
class PatchDiscriminator(nn.Module):
    def __init__(
        self,
        channels: int,
        cardinalities: Sequence[int] = (),
        width_mult: int = 64,
        n_layers: int = 3,
        spectral_norm: bool = True,
        auxiliary: bool = False,
        **_ignored,
    ):
        super().__init__()

        def norm(c: int) -> nn.Module:
            return nn.Identity() if spectral_norm else nn.BatchNorm2d(c)

        widths = [width_mult * min(2**i, 8) for i in range(n_layers + 1)]
        layers: list[nn.Module] = [maybe_sn(nn.Conv2d(channels, widths[0], 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2, True)]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            layers += [maybe_sn(nn.Conv2d(widths[i - 1], widths[i], 4, stride, 1), spectral_norm), norm(widths[i]), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        self.patch_scores = maybe_sn(nn.Conv2d(widths[-1], 1, 4, 1, 1), spectral_norm)
        self.head = DiscriminatorHead(widths[-1], cardinalities, projection=True, auxiliary=auxiliary, sn=spectral_norm, score=False)

    def forward(self, x: torch.Tensor, conditions: torch.Tensor | None = None) -> DiscriminatorOutput:
        h = self.features(x)
        return self.head(h.mean(dim=(2, 3)), conditions, score_map=self.patch_scores(h).squeeze(1))
