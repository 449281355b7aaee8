"""Between product images and a model's values: uint8 pixels to [-1, 1] (padded to the model's size)
and back (cropped to the catalog's size). Shared by training (batches, grids, validation) and
inference (generate, encode, evaluate)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
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


@torch.no_grad()
def translate_images(network: Callable[[torch.Tensor], torch.Tensor], images: np.ndarray, device: torch.device | None = None,
                     batch_size: int = 256) -> np.ndarray:
    """uint8 NHWC images (or a translator's views) through an image-to-image network, batch by batch, to uint8 NHWC."""
    out = []
    for start in range(0, len(images), batch_size):
        batch = to_model_range(torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])), None, 0.0)
        out.append(to_uint8(network(batch if device is None else batch.to(device))))
    return np.concatenate(out)


def crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Undo `data.pad_to`: generated images come back at the catalog's size."""
    top, left = (x.shape[2] - height) // 2, (x.shape[3] - width) // 2
    return x[:, :, top : top + height, left : left + width]


# Samples are computed in aligned blocks of BLOCK images, a short last block padded to full size, so
# the forward pass that makes image i always has the same shape: float kernels pick their blocking by
# batch shape, and a pixel can round to another level in a batch of another size. With each block's
# latents from its own random stream, image i of a seed's stream is the same bytes however many images
# are asked, from which index a job starts, or on which process a shard runs.
BLOCK = 256
NOISE_STREAM, CONDITION_STREAM = 0, 1


def block_rng(seed: int, block: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, block, stream])


def block_latents(seed: int, block: int, z_dim: int, rows: int = BLOCK) -> torch.Tensor:
    """The first `rows` rows of a block's latents. The generator fills the array in order, so they are
    the same numbers however many rows are drawn (a test holds numpy to it): image 0 of a seed, most
    requests' only image, costs one row, not 256."""
    return torch.from_numpy(block_rng(seed, block, NOISE_STREAM).standard_normal((rows, z_dim), dtype=np.float32))


def index_blocks(first_index: int, count: int) -> Iterator[tuple[int, int, int]]:
    """(block, first row, rows) for images first_index .. first_index + count - 1."""
    index, end = first_index, first_index + count
    while index < end:
        block, row = divmod(index, BLOCK)
        rows = min(BLOCK - row, end - index)
        yield block, row, rows
        index += rows


def stream_latents(seed: int, first_index: int, count: int, z_dim: int) -> torch.Tensor:
    """(count, z_dim): the latents of images first_index .. first_index + count - 1 of the seed's
    stream, the rows of their blocks that `sample_images` uses, drawn only up to each last row."""
    return torch.cat([block_latents(seed, block, z_dim, rows=row + rows)[row:] for block, row, rows in index_blocks(first_index, count)])


@torch.no_grad()
def sample_images(generator: Callable[..., torch.Tensor], spec: dict[str, Any], codes: torch.Tensor, seed: int, first_index: int = 0,
                  truncation: float = 1.0) -> np.ndarray:
    """uint8 samples at the catalog's size: images first_index .. first_index + len(codes) - 1 of the
    seed's stream, with these condition codes. `generator` is the module or an exported program's
    forward (prodgen.generate.backends). The truncation trick (psi < 1) pulls each latent toward the
    prior's mean, which is every category's mean latent too: the category enters the generator
    through its own input, not through z."""
    device = generator.device if hasattr(generator, "device") else next(generator.parameters()).device
    height, width, channels = spec["output_size"]
    chunks, done = [], 0
    for block, row, rows in index_blocks(first_index, len(codes)):
        z = block_latents(seed, block, spec["arguments"]["z_dim"]) * truncation
        block_codes = torch.zeros((BLOCK, codes.shape[1]), dtype=torch.long)  # rows not asked for are padding
        block_codes[row : row + rows] = codes[done : done + rows]
        images = generator(z.to(device), block_codes.to(device) if codes.shape[1] else None)
        chunks.append(to_uint8(crop_to(images[row : row + rows], height, width)))
        done += rows
    return np.concatenate(chunks) if chunks else np.zeros((0, height, width, channels), np.uint8)
