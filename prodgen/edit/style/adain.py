"""Feed-forward style transfer with adaptive instance normalisation (Huang & Belongie 2017): encode
the content and style images with the feature network, give each channel of the content's feature
maps the style's mean and standard deviation, and decode the result with a network trained to invert
the encoder. One forward pass instead of an optimisation.

A decoder belongs to one feature network (its config records the network's identity, a digest of
its weights). prodgen ships one for `random-multiscale` in prodgen/assets/style/; one for other
features is trained with benchmarks/train_adain_decoder.py, which writes it under
$PRODGEN_HOME/style/decoders/, where it is found by the features' identity."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from prodgen.edit.style.features import StyleFeatures, mean_std
from prodgen.errors import ProdgenError
from prodgen.fileio import atomic_path, write_json_atomic
from prodgen.paths import package_dir, prodgen_home

ARCHITECTURE = "prodgen-adain-decoder-v1"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TRAIN_SCRIPT = "benchmarks/train_adain_decoder.py"


def adain(content: torch.Tensor, style: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """Content feature maps (N, C, H, W) with each channel's mean and standard deviation replaced by the
    style's, blended with the content's own by `strength`: one affine map per channel, applied in one pass."""
    content_mean, content_std = mean_std(content)
    style_mean, style_std = mean_std(style)
    scale = style_std / content_std
    # strength * ((x - content_mean) * scale + style_mean) + (1 - strength) * x
    return torch.addcmul(strength * (style_mean - content_mean * scale), content, strength * scale + (1 - strength))


def adain_targets(network: StyleFeatures, content: torch.Tensor, style: torch.Tensor, strength: float = 1.0,
                  layers: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
    """AdaIN of each of the network's AdaIN layers (or of `layers`), blended with the content's own features: strength 1
    is all style statistics, 0 the photo's (Huang & Belongie's alpha). One style image serves a batch of contents."""
    layers = layers or network.adain_layers
    content_features = network.features(content, layers)
    style_features = network.features(style, layers)
    return {layer: adain(features, style_features[layer], strength) for layer, features in content_features.items()}


class Decoder(nn.Module):
    """From feature maps at 1/2 resolution or coarser back to an RGB image in [0, 1]: one stage per
    halving from the coarsest input to 1/2 (nearest upsampling, the input of that scale if the
    encoder has one concatenated and merged by a 1x1 convolution, a reflect-padded 3x3 convolution),
    then a 3x3 convolution to 4 RGB sub-pixels per position (pixel shuffle). Widths halve with each
    finer stage, and no wide convolution runs at full resolution: the decoder is cheap where most pixels are."""

    def __init__(self, inputs: list[tuple[str, int, int]], width: int) -> None:
        super().__init__()
        self.inputs = sorted(inputs, key=lambda entry: -entry[2])
        channels_at = {scale: channels for _, channels, scale in self.inputs}
        self.layer_at = {scale: layer for layer, _, scale in self.inputs}
        if min(channels_at) < 2:
            raise ProdgenError("An AdaIN decoder needs encoder layers at 1/2 resolution or coarser.")
        self.scales = []
        scale = max(channels_at)
        while scale >= 2:
            self.scales.append(scale)
            scale //= 2
        self.merge, self.refine = nn.ModuleList(), nn.ModuleList()
        previous = 0
        for scale in self.scales:
            stage_width = width * min(scale // 2, 4)
            self.merge.append(nn.Conv2d(previous + channels_at.get(scale, 0), stage_width, 1))
            self.refine.append(nn.Conv2d(stage_width, stage_width, 3))
            previous = stage_width
        self.to_rgb = nn.Conv2d(previous, 12, 3)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        x = None
        for scale, merge, refine in zip(self.scales, self.merge, self.refine):
            # merge(cat(upsample(x), skip)), computed without the concatenation and with the 1x1 convolution
            # on x before upsampling (nearest upsampling commutes with it): the same sums, a quarter of the work
            previous = 0 if x is None else x.shape[1]
            merged = merge.bias.view(1, -1, 1, 1)
            if scale in self.layer_at:
                merged = F.conv2d(features[self.layer_at[scale]], merge.weight[:, previous:].contiguous(), merge.bias)
            if x is not None:
                merged = merged + F.interpolate(F.conv2d(x, merge.weight[:, :previous].contiguous()), scale_factor=2.0, mode="nearest")
            x = F.relu(refine(F.pad(F.relu(merged), [1] * 4, mode="reflect")))
        return torch.sigmoid(F.pixel_shuffle(self.to_rgb(F.pad(x, [1] * 4, mode="reflect")), 2))


def decoder_inputs(network: StyleFeatures) -> list[tuple[str, int, int]]:
    return [(layer, network.layer_channels[layer], network.layer_scale[layer]) for layer in network.adain_layers]


def decoders_home() -> Path:
    return prodgen_home() / "style" / "decoders"


def shipped_decoders() -> Path:
    return package_dir("assets", "style")


def default_decoder_dir(network: StyleFeatures) -> Path:
    """Where the training script puts a decoder for `network` unless told otherwise."""
    kind, digest = network.identity.split(":", 1)
    return decoders_home() / re.sub(r"[^A-Za-z0-9._-]+", "-", f"{kind}-{digest[:16]}")


def save_decoder(decoder: Decoder, network: StyleFeatures, directory: Path, width: int, extra: dict[str, Any]) -> None:
    """Weights then config, each atomically; the config names the features it inverts."""
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file({k: v.contiguous() for k, v in decoder.state_dict().items()}, str(tmp))
    config = {"architecture": ARCHITECTURE, "features": network.name, "features_identity": network.identity,
              "inputs": [list(entry) for entry in decoder_inputs(network)], "width": width, **extra}
    write_json_atomic(directory / CONFIG_FILE, config)


def load_decoder_from(directory: Path) -> tuple[Decoder, dict[str, Any]]:
    try:
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        if config.get("architecture") != ARCHITECTURE:
            raise ProdgenError(f"{directory / CONFIG_FILE} describes {config.get('architecture')!r}; this prodgen reads {ARCHITECTURE!r}.")
        decoder = Decoder([tuple(entry) for entry in config["inputs"]], int(config["width"]))
        decoder.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ProdgenError(f"Cannot read the AdaIN decoder in {directory}: {exc}") from exc
    return decoder.eval().requires_grad_(False), config


def find_decoder(network: StyleFeatures) -> Decoder:
    """The decoder trained for exactly these features: the user's own (under $PRODGEN_HOME/style/decoders/), else a shipped one."""
    for root in (decoders_home(), shipped_decoders()):
        for config_file in sorted(root.glob(f"*/{CONFIG_FILE}")) if root.is_dir() else []:
            try:
                identity = json.loads(config_file.read_text(encoding="utf-8")).get("features_identity")
            except (OSError, ValueError):
                continue
            if identity == network.identity:
                return load_decoder_from(config_file.parent)[0]
    raise ProdgenError(f"No AdaIN decoder for the features {network.name!r}: AdaIN needs a decoder trained to invert them. Train one "
                       f"(12 minutes of CPU by default; --minutes for longer) with: python {TRAIN_SCRIPT} --features {network.name} (it is written to "
                       f"{default_decoder_dir(network)}, where stylise finds it), or use --method gatys.")


DETAIL_SIGMA = 1.0  # pixels: the band of the photo finer than this is handed back to the decoded image


def fine_detail(images: torch.Tensor, sigma: float = DETAIL_SIGMA) -> torch.Tensor:
    """The images minus their Gaussian blur (radius 3 sigma, reflected at the border): edges and grain finer
    than `sigma`. OpenCV blurs: PyTorch runs single-channel convolutions on CPU about fifty times slower."""
    radius = max(1, round(3 * sigma))
    planes = images.detach().permute(0, 2, 3, 1).contiguous().numpy()
    blurred = np.stack([cv2.GaussianBlur(plane, (2 * radius + 1, 2 * radius + 1), sigma, borderType=cv2.BORDER_REFLECT_101) for plane in planes])
    return images - torch.from_numpy(blurred.reshape(planes.shape)).permute(0, 3, 1, 2)


@torch.no_grad()
def adain_stylise(network: StyleFeatures, decoder: Decoder, content: torch.Tensor, style: torch.Tensor, strength: float = 1.0,
                  detail: bool = True) -> torch.Tensor:
    """Stylise a batch of contents (N, 3, H, W) in [0, 1], H and W multiples of the decoder's coarsest scale, after one style image.

    `detail`: add the photo's finest band (fine_detail) to the decoded image. A decoder trained for minutes
    on a CPU draws nothing finer than about two pixels, so the product's seams, outlines and print edges
    come out soft (edge-map SSIM to the photo 0.33 on benchmarks/bench_style.py's 60 pairs); handing that
    band back keeps them (0.78), while the colours and coarser texture stay the style's. Channels-last tensors:
    oneDNN's CPU convolutions run about 1.3 times as fast on them."""
    channels_last = torch.channels_last
    targets = adain_targets(network, content.contiguous(memory_format=channels_last), style.contiguous(memory_format=channels_last), strength)
    decoded = decoder.to(memory_format=channels_last)(targets).contiguous()
    return (decoded + fine_detail(content)).clamp_(0, 1) if detail else decoded
