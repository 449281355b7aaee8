"""A discriminator that judges each image at several scales (pix2pixHD, Wang et al. 2018): one
discriminator of the chosen architecture per scale, on the image itself and on it average-pooled
2x, 4x, ... A coarse copy sees the same receptive field in pixels of the product as the full-size
one does at its last layers, but spends all its capacity there: on where colours and parts sit
within the silhouette, which a 64-px discriminator judges only through its deepest, smallest maps."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from prodgen.errors import ProdgenError
from prodgen.models.layers import DiscriminatorOutput
from prodgen.models.registry import build_discriminator


class MultiScaleDiscriminator(nn.Module):
    """`scales` discriminators named `name`, the first at (height, width), each next one at half the
    previous size. Their scores are joined into one score map (B, total scores), which the losses
    average as they do a PatchGAN's, so for single-score architectures every scale weighs the same in
    D's and G's loss. Pooled features are joined too (the MMD loss reads them). The auxiliary
    classifiers and the self-supervised decoders, and any keyword the call passes for them, belong to
    the full-size discriminator: one set of class logits, one image rebuilt."""

    def __init__(self, name: str, scales: int, height: int, width: int, **options: Any):
        super().__init__()
        factor = 2 ** (scales - 1)
        if height % factor or width % factor:
            raise ProdgenError(f"model.d_scales {scales}: {width}x{height} images do not halve evenly {scales - 1} times; choose fewer scales")
        coarse = {**options, "auxiliary": False, "decoders": False}
        self.scales = nn.ModuleList([build_discriminator(name, height=height, width=width, **options)])
        for k in range(1, scales):
            try:
                self.scales.append(build_discriminator(name, height=height >> k, width=width >> k, **coarse))
            except ProdgenError as error:
                raise ProdgenError(f"model.d_scales {scales}: the {name!r} discriminator cannot judge {width >> k}x{height >> k} images ({error}); choose fewer scales") from error

    def forward(self, x: torch.Tensor, conditions: torch.Tensor | None = None, **full_size_only: Any) -> DiscriminatorOutput:
        outputs = [self.scales[0](x, conditions, **full_size_only)]
        for discriminator in self.scales[1:]:
            x = F.avg_pool2d(x, 2)
            outputs.append(discriminator(x, conditions))
        logits = torch.cat([output.logits.reshape(len(x), -1) for output in outputs], dim=1)
        features = torch.cat([output.features for output in outputs], dim=1)
        return DiscriminatorOutput(logits, features, outputs[0].aux_logits, outputs[0].decoded)
