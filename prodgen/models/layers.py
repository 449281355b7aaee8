"""Building blocks shared by the architectures: conditioning, self-attention, upsampling, resolution planning."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from prodgen.errors import ProdgenError


def plan_resolution(height: int, width: int, max_doublings: int = 5, min_base: int = 3) -> tuple[int, int, int]:
    """(base_height, base_width, doublings): the most 2x up-samplings that reach (height, width)
    exactly from a base of at least `min_base` px, so one class serves 28, 32, 64, 64x80 and 128."""
    for doublings in range(max_doublings, 0, -1):
        scale = 2**doublings
        if height % scale == 0 and width % scale == 0 and min(height, width) // scale >= min_base:
            return height // scale, width // scale, doublings
    raise ProdgenError(f"Cannot build a network for {width}x{height}: each side must be a multiple of 2 times at least {min_base} px.")


def project_latent(z: torch.Tensor, conv: nn.ConvTranspose2d) -> torch.Tensor:
    """A generator's first layer, (B, Z) -> (B, C, h, w): a transposed convolution of a 1x1 input is
    a matrix product, which the CPU runs faster than the convolution routine (same weights, same
    result up to float rounding; about 15 % off a DCGAN generator's forward+backward on one thread)."""
    weight = conv.weight
    return (z.flatten(1) @ weight.flatten(1)).view(-1, *weight.shape[1:])


def maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    return spectral_norm(module) if enabled else module


class BinomialBlur(nn.Module):
    """A fixed [1, 2, 1] x [1, 2, 1] / 16 low-pass per channel (the filter StyleGAN applies when
    upsampling). Its response is zero at the Nyquist frequency, where a 2x layer's checkerboard lives."""

    def __init__(self, channels: int):
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (torch.outer(taps, taps) / 16).expand(channels, 1, 3, 3).contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.kernel, groups=x.shape[1])


class HighFrequencyEnergy(nn.Module):
    """Where an image holds fine detail: the local mean of |image - low-pass(image)| over a 3x3 window,
    one channel. A 2x layer's checkerboard flips sign from pixel to pixel, so a stride-2 first layer
    sees it as a per-channel offset whose sign a one-pixel shift (DiffAugment translation) flips; its
    magnitude here does not change with the shift, and on a flat product it stands out from real
    photos, whose detail sits at edges."""

    def __init__(self, channels: int):
        super().__init__()
        self.low_pass = BinomialBlur(channels)
        self.local_mean = BinomialBlur(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.local_mean((x - self.low_pass(x)).abs().mean(1, keepdim=True))


class MinibatchStandardDeviation(nn.Module):
    """One more feature map: how much the images of a small group differ from one another (Karras et
    al. 2018, kept in StyleGAN2). A generator that draws nearly the same image for every latent gives
    groups with almost no spread, which real groups never have, so D can tell and G must vary its images.
    Groups take every n/g-th image of the batch, in groups of `group_size`, or of the largest divisor of
    the batch smaller than that, so any batch size works; the spread is averaged over channels and positions."""

    def __init__(self, group_size: int):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        group = max(size for size in range(1, min(self.group_size, n) + 1) if n % size == 0)
        grouped = x.reshape(group, n // group, c, h, w)
        spread = (grouped.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # one value per group
        return torch.cat([x, spread.repeat(group)[:, None, None, None].expand(n, 1, h, w)], dim=1)


class LatentPixelNoise(nn.Module):
    """Per-pixel noise at the output size, through a learned 3x3 filter (zero at the start, so G begins
    as it would without it): StyleGAN's noise inputs (Karras et al. 2019), the source of fine stochastic
    detail. A 2x layer that resizes by nearest neighbour draws nothing at the highest frequencies (the
    resize's 2x2 box is zero at Nyquist), and this layer can. The noise is a fixed random projection of
    the latent, not a fresh draw, so one latent still gives one image: generation stays reproducible and
    exports as a plain matrix product. The projection is a buffer saved with the weights."""

    def __init__(self, z_dim: int, height: int, width: int, channels: int, seed: int = 0):
        super().__init__()
        self.size = (height, width)
        projection = torch.randn(z_dim, height * width, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("projection", projection / z_dim**0.5)  # a standard normal z gives each pixel unit variance
        self.filter = nn.Conv2d(1, channels, 3, 1, 1, bias=False)
        nn.init.zeros_(self.filter.weight)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.filter((z @ self.projection).reshape(-1, 1, *self.size))


# Which 3x3 tap of a resize-convolution reaches each of a stride-2 transposed convolution's 4 taps, per
# axis: output pixel 2i reads input rows i-1 (tap 0) and i (taps 1, 2); pixel 2i+1 reads i (taps 0, 1)
# and i+1 (tap 2). Row k of this matrix lists the 3x3 taps that add up to transposed tap k.
_NEAREST_TO_TRANSPOSED = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def nearest_resize_kernel(weight: torch.Tensor) -> torch.Tensor:
    """The stride-2 transposed-convolution kernel (in, out, 4, 4) that computes exactly a nearest 2x
    resize followed by this 3x3 convolution (out, in, 3, 3) with zero padding."""
    taps = _NEAREST_TO_TRANSPOSED.to(weight)
    return torch.einsum("kd,le,oide->iokl", taps, taps, weight)


class _ResizeConvolution(nn.Module):
    """Nearest-neighbour 2x resize, then a 3x3 convolution (Odena et al. 2016): every output pixel
    gets the same number of kernel taps, so there is no checkerboard to learn away. The resize copies
    each pixel four times, so the two steps are one transposed convolution whose 4x4 kernel is tied to
    the 3x3 one (`nearest_resize_kernel`): the same images, at a transposed convolution's cost
    instead of a 3x3 convolution over the doubled map (benchmarks/RESULTS.md)."""

    def __init__(self, c_in: int, c_out: int, bias: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, nearest_resize_kernel(self.conv.weight), self.conv.bias, stride=2, padding=1)


class _BlurResizeConvolution(nn.Module):
    """Resize-convolution with the binomial low-pass after the resize: the nearest-neighbour copy's
    2-pixel blocks are smoothed too."""

    def __init__(self, c_in: int, c_out: int, bias: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias)
        self.smooth = BinomialBlur(c_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.smooth(F.interpolate(x, scale_factor=2, mode="nearest")))


class _BlurredTransposedConvolution(nn.Module):
    """The transposed convolution, then the binomial low-pass on its output (StyleGAN's order: the
    zero-insertion's mirror image of the input's mean lands on the Nyquist frequency, where the
    filter is zero). It costs a depthwise 3x3 on top of the transposed convolution, where a
    resize-convolution's 3x3 at the doubled size costs about twice the layer."""

    def __init__(self, c_in: int, c_out: int, bias: bool = False):
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias)
        self.blur = BinomialBlur(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(self.conv(x))


class SubPixelConvolution(nn.Module):
    """A 3x3 convolution at the input size to four times the channels, rearranged into a 2x map
    (Shi et al. 2016, "pixel shuffle"). Each 2x2 block of the output has its own kernels, so unlike a
    resize-convolution it can draw detail up to the doubled map's Nyquist frequency, diagonals
    included. Started as Aitken et al. 2017's ICNR (`tie_subpixels_`): the four kernels are equal, so
    it begins as a 3x3 convolution followed by a nearest resize and has no checkerboard to unlearn;
    training may untie them. It costs what a resize-convolution costs (the same multiplies per output pixel)."""

    def __init__(self, c_in: int, c_out: int, bias: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(c_in, 4 * c_out, 3, 1, 1, bias=bias)
        self.tie_subpixels_()

    @torch.no_grad()
    def tie_subpixels_(self) -> None:
        """Copy the first of each output channel's four sub-pixel kernels to the other three. Pixel
        shuffle reads input channel 4c + 2i + j as output channel c at offset (i, j). A family's
        initialiser that redraws the convolution calls this again after it."""
        weight = self.conv.weight.unflatten(0, (-1, 4))
        weight.copy_(weight[:, :1].expand_as(weight))
        if self.conv.bias is not None:
            bias = self.conv.bias.unflatten(0, (-1, 4))
            bias.copy_(bias[:, :1].expand_as(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.conv(x), 2)


def _transposed(c_in: int, c_out: int, bias: bool = False) -> nn.Module:
    return nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias)


# 2x upsampling layers by name (a generator's `upsample` argument, `model.upsample` in a preset).
UPSAMPLERS = {
    "transposed": _transposed,
    "transposed-blur": _BlurredTransposedConvolution,
    "nearest": _ResizeConvolution,
    "blur": _BlurResizeConvolution,
    "subpixel": SubPixelConvolution,
}


def per_layer_upsampling(upsample: str | Sequence[str], count: int) -> list[str]:
    """One upsampling kind per 2x layer, coarsest first: one name for every layer, or a list naming
    each, e.g. cheap transposed convolutions at low resolution and resize-convolutions at the top,
    where a checkerboard shows most."""
    if isinstance(upsample, str):
        return [upsample] * count
    if len(upsample) != count:
        raise ProdgenError(f"upsample lists {len(upsample)} layers; this generator has {count} 2x layers, coarsest first.")
    return list(upsample)


def build_upsampler(kind: str, c_in: int, c_out: int, bias: bool = False) -> nn.Module:
    if kind not in UPSAMPLERS:
        raise ProdgenError(f"Unknown upsampling {kind!r}; registered: {', '.join(UPSAMPLERS)}.")
    return UPSAMPLERS[kind](c_in, c_out, bias=bias)


class ConditionEmbedding(nn.Module):
    """One embedding table per condition (category, colour, material, ...); the vectors are summed,
    so any combination of values can be asked for."""

    def __init__(self, cardinalities: Sequence[int], dim: int, init_value: float = 0.0, sn: bool = False):
        super().__init__()
        self.tables = nn.ModuleList()
        for n in cardinalities:
            table = nn.Embedding(n, dim)
            nn.init.normal_(table.weight, mean=init_value, std=0.02)
            self.tables.append(maybe_sn(table, sn))

    def forward(self, conditions: torch.Tensor) -> torch.Tensor:
        return sum(table(conditions[:, i]) for i, table in enumerate(self.tables))


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose gain and bias come from the conditions (Miyato & Koyama 2018)."""

    def __init__(self, channels: int, cardinalities: Sequence[int]):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=not cardinalities)
        self.conditional = bool(cardinalities)
        if self.conditional:
            self.gain = ConditionEmbedding(cardinalities, channels)
            self.bias = ConditionEmbedding(cardinalities, channels)
            for table in self.gain.tables:
                nn.init.zeros_(table.weight)
            for table in self.bias.tables:
                nn.init.zeros_(table.weight)

    def forward(self, x: torch.Tensor, conditions: torch.Tensor | None) -> torch.Tensor:
        out = self.norm(x)
        if not self.conditional:
            return out
        gain = 1 + self.gain(conditions)[:, :, None, None]
        return out * gain + self.bias(conditions)[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019), starting as the identity (gamma = 0)."""

    def __init__(self, channels: int, sn: bool = True):
        super().__init__()
        inner = max(1, channels // 8)
        self.query = maybe_sn(nn.Conv2d(channels, inner, 1, bias=False), sn)
        self.key = maybe_sn(nn.Conv2d(channels, inner, 1, bias=False), sn)
        self.value = maybe_sn(nn.Conv2d(channels, max(1, channels // 2), 1, bias=False), sn)
        self.out = maybe_sn(nn.Conv2d(max(1, channels // 2), channels, 1, bias=False), sn)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        query = self.query(x).flatten(2).transpose(1, 2)
        key = nn.functional.max_pool2d(self.key(x), 2).flatten(2) if min(h, w) >= 4 else self.key(x).flatten(2)
        value = nn.functional.max_pool2d(self.value(x), 2).flatten(2) if min(h, w) >= 4 else self.value(x).flatten(2)
        attention = torch.softmax(query @ key, dim=-1)
        attended = (value @ attention.transpose(1, 2)).view(b, -1, h, w)
        return x + self.gamma * self.out(attended)


class DiscriminatorOutput(tuple):
    """(logits, features, aux_logits, decoded): the realness score (B,) or a patch map, pooled
    features (B, F) for feature-space losses, one auxiliary-classifier logit tensor per condition,
    and the images a self-supervised discriminator rebuilt from its features (or None)."""

    __slots__ = ()

    def __new__(
        cls,
        logits: torch.Tensor,
        features: torch.Tensor,
        aux_logits: list[torch.Tensor] | None,
        decoded: tuple[torch.Tensor, ...] | None = None,
    ):
        return super().__new__(cls, (logits, features, aux_logits, decoded))

    logits = property(lambda self: self[0])
    features = property(lambda self: self[1])
    aux_logits = property(lambda self: self[2])
    decoded = property(lambda self: self[3])


class DiscriminatorHead(nn.Module):
    """Turns pooled features into a score: a linear output, the projection term of
    Miyato & Koyama (2018) for each condition, and optionally AC-GAN classifiers."""

    def __init__(self, features: int, cardinalities: Sequence[int], projection: bool, auxiliary: bool, sn: bool, score: bool = True):
        super().__init__()
        # score=False: the caller passes its own score map (PatchGAN), so no linear score is made (DDP wants every parameter used)
        self.linear = maybe_sn(nn.Linear(features, 1), sn) if score else None
        self.projection = ConditionEmbedding(cardinalities, features, sn=sn) if projection and cardinalities else None
        self.auxiliary = nn.ModuleList(maybe_sn(nn.Linear(features, n), sn) for n in cardinalities) if auxiliary else None

    def forward(self, pooled: torch.Tensor, conditions: torch.Tensor | None, score_map: torch.Tensor | None = None) -> DiscriminatorOutput:
        logits = score_map if self.linear is None else self.linear(pooled).squeeze(1)
        if self.projection is not None:
            bonus = (self.projection(conditions) * pooled).sum(dim=1)
            logits = logits + (bonus if score_map is None else bonus.view(-1, *([1] * (score_map.dim() - 1))))
        aux = [head(pooled) for head in self.auxiliary] if self.auxiliary is not None else None
        return DiscriminatorOutput(logits, pooled, aux)
