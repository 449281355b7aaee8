"""From a generator's output to product images: the value range, the catalog's size, uint8 pixels.
Shared by training (sample grids, validation) and inference (generate, evaluate)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


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
