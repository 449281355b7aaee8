"""Image grids and PNG output shared by contact sheets, sample grids and reports."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from prodgen.fileio import atomic_path

WHITE = 255


def to_rgb(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 1|3) uint8 -> (N, H, W, 3)."""
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def upscale_nearest(images: np.ndarray, min_side: int) -> np.ndarray:
    """Enlarge tiny images (28 px Fashion-MNIST) by an integer factor so they are visible in a sheet."""
    factor = max(1, -(-min_side // min(images.shape[1], images.shape[2])))
    if factor == 1:
        return images
    return images.repeat(factor, axis=1).repeat(factor, axis=2)


def make_grid(images: np.ndarray, ncols: int, pad: int = 2, background: int = WHITE) -> np.ndarray:
    """Tile (N, H, W, C) uint8 images into one (rows*H, cols*W, C) array, row-major."""
    if images.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) images, got shape {images.shape}")
    n, h, w, c = images.shape
    ncols = max(1, min(ncols, n)) if n else 1
    nrows = max(1, -(-n // ncols))
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), background, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y : y + h, x : x + w] = images[i]
    return grid


def labelled_rows(rows: Sequence[tuple[str, np.ndarray]], ncols: int, label_width: int = 110, min_side: int = 56) -> Image.Image:
    """One row per (label, images) pair, the label written at the left: a contact sheet."""
    font = ImageFont.load_default()
    strips = []
    for label, images in rows:
        tiles = upscale_nearest(to_rgb(images), min_side)
        strip = make_grid(tiles, ncols=ncols) if len(tiles) else np.full((min_side + 4, 4, 3), WHITE, np.uint8)
        strips.append((label, strip))
    width = label_width + max(strip.shape[1] for _, strip in strips)
    height = sum(strip.shape[0] for _, strip in strips)
    sheet = Image.new("RGB", (width, height), (WHITE,) * 3)
    draw = ImageDraw.Draw(sheet)
    y = 0
    for label, strip in strips:
        sheet.paste(Image.fromarray(strip), (label_width, y))
        draw.text((6, y + strip.shape[0] // 2 - 6), label, fill=(20, 20, 20), font=font)
        y += strip.shape[0]
    return sheet


def save_png(image: np.ndarray | Image.Image, path: str | os.PathLike) -> None:
    """Write a PNG atomically; (H, W, 1) arrays are saved as greyscale."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def save_gif(frames: np.ndarray, path: str | os.PathLike, milliseconds: int = 250, min_side: int = 112) -> None:
    """An animated GIF of (N, H, W, C) uint8 frames, looping, enlarged (nearest) to at least `min_side`; atomic."""
    images = [Image.fromarray(frame) for frame in upscale_nearest(to_rgb(frames), min_side)]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=milliseconds, loop=0)
