"""Neural style transfer for product photos: a product photo and a style image in, the product
drawn in the style out, by optimisation (Gatys et al. 2016) or in one forward pass (AdaIN, Huang &
Belongie 2017), over a feature network chosen by name (features.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from prodgen.edit.style.adain import adain_stylise, find_decoder
from prodgen.edit.style.features import DEFAULT_FEATURES, StyleFeatures, load_features
from prodgen.edit.style.gatys import gatys
from prodgen.errors import ProdgenError

METHODS = ("gatys", "adain")
DEFAULT_SIZE = 256
DEFAULT_STEPS = 200
DEFAULT_STRENGTH = {"gatys": 0.8, "adain": 1.0}
SIDE_MULTIPLE = 8  # the AdaIN decoder's coarsest stage is 1/8 of the image: both sides a multiple of it

__all__ = ["DEFAULT_FEATURES", "METHODS", "StyleFeatures", "load_features", "read_photo", "stylise", "stylise_file", "to_pixels", "to_tensor"]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div_(255)


def to_pixels(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float in [0, 1] -> (H, W, 3) uint8."""
    return (image[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def working_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) with the longer side `size`, the aspect ratio kept, both sides multiples of SIDE_MULTIPLE."""
    scale = size / max(height, width)
    return tuple(max(SIDE_MULTIPLE, round(side * scale / SIDE_MULTIPLE) * SIDE_MULTIPLE) for side in (height, width))  # type: ignore[return-value]


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    shrinking = height * width < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def check_options(method: str, size: int, steps: int, strength: float | None) -> None:
    if method not in METHODS:
        raise ProdgenError(f"Unknown style transfer method {method!r}; choose {' or '.join(METHODS)}.")
    if size < 32:
        raise ProdgenError(f"--size {size} is too small: the longer side must be at least 32 pixels.")
    if steps < 1:
        raise ProdgenError(f"--steps {steps}: Gatys' optimisation needs at least 1 step.")
    if strength is not None and not 0 <= strength <= 1:
        raise ProdgenError(f"--strength {strength} is outside [0, 1] (0: the photo, 1: all style).")


def stylise(content: np.ndarray, style: np.ndarray, *, method: str = "adain", features: str | StyleFeatures | None = None,
            size: int = DEFAULT_SIZE, steps: int = DEFAULT_STEPS, strength: float | None = None, keep_background: bool = False,
            detail: bool = True) -> np.ndarray:
    """The product photo `content` (H, W, 1|3 uint8) drawn in the style of `style`, as (H, W, 3) uint8.
    The style is computed with the longer side at `size` (the style image resized likewise), then
    brought back to the photo's own size. `keep_background`: only the product (prodgen.data.masks.
    product_mask) is stylised; every pixel outside it is the photo's own, bit for bit. `detail` (AdaIN):
    the photo's finest band is added back to the decoded image (adain.adain_stylise says why)."""
    check_options(method, size, steps, strength)
    strength = DEFAULT_STRENGTH[method] if strength is None else strength
    network = features if isinstance(features, StyleFeatures) else load_features(features)
    decoder = find_decoder(network) if method == "adain" else None
    photo = rgb(content)
    height, width = working_size(*photo.shape[:2], size)
    style_height, style_width = working_size(*style.shape[:2], size)
    content_tensor, style_tensor = to_tensor(resize(photo, height, width)), to_tensor(resize(rgb(style), style_height, style_width))
    if decoder is not None:
        result = adain_stylise(network, decoder, content_tensor, style_tensor, strength, detail)
    else:
        result = gatys(network, content_tensor, style_tensor, steps=steps, strength=strength)
    stylised = resize(to_pixels(result), *photo.shape[:2])
    if not keep_background:
        return stylised
    from prodgen.data.masks import product_mask

    inside, _ = product_mask(photo)
    return np.where(inside[..., None], stylised, photo)


OUTPUT_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}


def read_photo(path: Path, role: str) -> np.ndarray:
    """A photo's pixels (H, W, 1|3 uint8), or a ProdgenError that names the file."""
    from prodgen.data.preprocess import BadImage, decode_photo

    if not path.is_file():
        raise ProdgenError(f"No {role} image at {path}.")
    try:
        return decode_photo(path.read_bytes())
    except BadImage as exc:
        raise ProdgenError(f"The {role} file {path} is not a usable image: {exc}") from exc


def stylise_file(content: Path, style: Path, out: Path, **options) -> np.ndarray:
    """Read the content and style photos, stylise (options as `stylise`), write `out` atomically as PNG,
    JPEG or WebP by its suffix. The inputs are only read: `out` may not be one of them."""
    from prodgen.fileio import write_bytes_atomic
    from prodgen.generate.outputs import encode

    image_format = OUTPUT_FORMATS.get(out.suffix.lower())
    if image_format is None:
        raise ProdgenError(f"--out {out}: name the output .png, .jpg or .webp.")
    if out.resolve() in (content.resolve(), style.resolve()):
        raise ProdgenError(f"--out {out} is one of the input images: choose another file, so no input is overwritten.")
    pixels = stylise(read_photo(content, "content"), read_photo(style, "style"), **options)
    write_bytes_atomic(out, encode(pixels, image_format))
    return pixels
