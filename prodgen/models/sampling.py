"""Between product images and a model's values: uint8 pixels to [-1, 1] (padded to the model's size)
and back (cropped to the catalog's size). Shared by training (batches, grids, validation) and
inference (generate, encode, evaluate)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from prodgen.errors import ProdgenError


def to_model_range(images_u8: torch.Tensor, pad_to: int | None, background: float) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1], padded with the catalog's background if asked."""
    x = images_u8.permute(0, 3, 1, 2).float().div_(127.5).sub_(1)
    if pad_to is not None:
        dh, dw = pad_to - x.shape[2], pad_to - x.shape[3]
        if dh < 0 or dw < 0:
            raise ProdgenError(f"data.pad_to={pad_to} is smaller than the images ({x.shape[3]}x{x.shape[2]}).")
        x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), value=background)
    return x


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] NCHW -> uint8 NHWC."""
    return images.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Undo `data.pad_to`: generated images come back at the catalog's size."""
    top, left = (x.shape[2] - height) // 2, (x.shape[3] - width) // 2
    return x[:, :, top : top + height, left : left + width]


@torch.no_grad()
def sample_images(generator: nn.Module, spec: dict[str, Any], codes: torch.Tensor, seed: int, batch_size: int = 500) -> np.ndarray:
    """uint8 samples at the catalog's size, from a private RNG so training randomness is untouched."""
    rng = torch.Generator().manual_seed(seed)
    device = next(generator.parameters()).device
    height, width, channels = spec["output_size"]
    chunks = []
    for start in range(0, len(codes), batch_size):
        part = codes[start : start + batch_size].to(device)
        z = torch.randn(len(part), spec["arguments"]["z_dim"], generator=rng).to(device)
        chunks.append(to_uint8(crop_to(generator(z, part if part.shape[1] else None), height, width)))
    return np.concatenate(chunks) if chunks else np.zeros((0, height, width, channels), np.uint8)
