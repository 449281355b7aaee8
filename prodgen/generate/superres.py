"""Learned super-resolution for post-processing, from local weights only: ESPCN (Shi et al. 2016,
"Real-time single image and video super-resolution using an efficient sub-pixel convolutional neural
network"): three convolutions at the low resolution, then a pixel shuffle by the scale factor.

prodgen ships no super-resolution weights and downloads none. A weights file is a safetensors file
whose header metadata says `architecture: espcn`, `scale` and `channels`, with the tensors
`conv1.*`, `conv2.*`, `conv3.*` of `ESPCN` below; `save_espcn` writes one. The `superres:FILE` step
applies it once (x scale); follow it with `upscale:SIZE` for an exact catalog size."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from prodgen.errors import ProdgenError


class ESPCN(nn.Module):
    def __init__(self, scale: int, channels: int):
        super().__init__()
        self.scale, self.channels = scale, channels
        self.conv1 = nn.Conv2d(channels, 64, 5, padding=2)
        self.conv2 = nn.Conv2d(64, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, channels * scale**2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv3(torch.tanh(self.conv2(torch.tanh(self.conv1(x))))))


def save_espcn(model: ESPCN, path: Path) -> None:
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path),
              metadata={"architecture": "espcn", "scale": str(model.scale), "channels": str(model.channels)})


@functools.lru_cache(maxsize=4)
def load_espcn(path: str) -> ESPCN:
    """The model in a local weights file; a missing or foreign file is a clear error naming it."""
    file = Path(path)
    if not file.is_file():
        raise ProdgenError(f"No super-resolution weights at {file}: prodgen ships none and downloads none; "
                           "give a local ESPCN safetensors file (see prodgen.generate.superres).")
    try:
        with safe_open(str(file), framework="pt") as handle:
            meta = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:  # safetensors raises its own types for a foreign file
        raise ProdgenError(f"{file} is not a safetensors file: {exc}") from None
    if meta.get("architecture") != "espcn" or not meta.get("scale", "").isdigit() or meta.get("channels") not in ("1", "3"):
        raise ProdgenError(f"{file}: its metadata must say architecture espcn, scale and channels (1 or 3); it says {meta or 'nothing'}.")
    model = ESPCN(int(meta["scale"]), int(meta["channels"]))
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise ProdgenError(f"{file}: the tensors are not an ESPCN's: {exc}") from None
    return model.eval().requires_grad_(False)


@torch.no_grad()
def super_resolve(image: np.ndarray, path: str) -> np.ndarray:
    """(H, W, C) uint8 -> (scale H, scale W, C) uint8 through the local ESPCN weights."""
    model = load_espcn(path)
    if image.shape[2] != model.channels:
        raise ProdgenError(f"{path} is for {model.channels}-channel images; this one has {image.shape[2]}.")
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    y = model(x)[0].clamp(0, 1).mul(255).round().to(torch.uint8)
    return y.permute(1, 2, 0).numpy()
