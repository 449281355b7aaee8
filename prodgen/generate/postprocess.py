"""Post-processing that makes an image catalog-ready: an ordered chain of optional steps, written like
`denoise,autocontrast,white-bg,upscale:256,pad:4x5`. The same chain runs on generated images
(`prodgen generate --post`, recorded in each image's metadata so `regenerate` repeats it) and on a
merchant's real photos (`prodgen postprocess`). Every step takes and returns (H, W, 1|3) uint8."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from prodgen.data.masks import background_colour, plain_background_mask
from prodgen.errors import ProdgenError

WHITE = 255


def denoise(image: np.ndarray, method: str) -> np.ndarray:
    """Non-local means (filter strength 10, OpenCV's recommended windows) or an edge-keeping bilateral filter."""
    if method == "bilateral":
        out = cv2.bilateralFilter(image, d=5, sigmaColor=40, sigmaSpace=5)
    elif image.shape[2] == 1:
        out = cv2.fastNlMeansDenoising(image[..., 0], None, h=10, templateWindowSize=7, searchWindowSize=21)
    else:
        out = cv2.fastNlMeansDenoisingColored(image, None, 10, 10, 7, 21)
    return out.reshape(image.shape)


def autocontrast(image: np.ndarray, cutoff: float) -> np.ndarray:
    """Stretch the tonal range to 0..255: the `cutoff` percentile of each pixel's darkest channel to 0,
    the 100 - `cutoff` percentile of its brightest to 255, one linear map for every channel, so hues
    stay (stretching each channel on its own would tint the product)."""
    low = np.percentile(image.min(axis=2), cutoff)
    high = np.percentile(image.max(axis=2), 100 - cutoff)
    if high - low < 1:
        return image
    return np.clip((image.astype(np.float32) - low) * (255.0 / (high - low)), 0, 255).round().astype(np.uint8)


def clahe(image: np.ndarray, clip: float) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of the lightness (LAB L), tiles of about 16 px."""
    tiles = max(1, min(8, min(image.shape[:2]) // 16))
    equalise = cv2.createCLAHE(clipLimit=clip, tileGridSize=(tiles, tiles)).apply
    if image.shape[2] == 1:
        return equalise(image[..., 0])[..., None]
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    lab[..., 0] = equalise(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def sharpen(image: np.ndarray, amount: float) -> np.ndarray:
    """Unsharp mask: add `amount` times the difference from a Gaussian blur (sigma 1 px)."""
    blurred = cv2.GaussianBlur(image, (0, 0), 1.0).reshape(image.shape).astype(np.float32)
    return np.clip(image.astype(np.float32) * (1 + amount) - blurred * amount, 0, 255).round().astype(np.uint8)


def white_background(image: np.ndarray, tolerance: int) -> np.ndarray:
    """A plain light background (the packshot's) becomes pure white; the product is untouched. A dark
    or busy background is left alone: whitening it would need a product mask from a segmentation
    model, and this step never guesses."""
    colour = background_colour(image)
    if colour.min() < 128:
        return image
    mask = plain_background_mask(image, tolerance)
    if mask is None:
        return image
    out = image.copy()
    out[mask] = WHITE
    return out


MAX_CAST = 48  # the most a light background's channels may differ for it to count as a neutral backdrop under a colour cast


def normalise_colour(image: np.ndarray, _: Any = None) -> np.ndarray:
    """White balance from the background: the border's median colour, which a packshot shoots neutral,
    becomes a neutral grey of the same brightness; every pixel gets the same per-channel gains. A dark
    or clearly coloured background (a wooden floor, a red wall) is not a white reference: left alone."""
    if image.shape[2] == 1:
        return image
    colour = background_colour(image).astype(np.float32)
    if colour.min() < 128 or colour.max() - colour.min() > MAX_CAST:
        return image
    gains = colour.mean() / colour
    return np.clip(image.astype(np.float32) * gains, 0, 255).round().astype(np.uint8)


def upscale(image: np.ndarray, size: int) -> np.ndarray:
    """Lanczos resampling so the longer side is `size` pixels, the aspect ratio kept."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).resize(target, Image.Resampling.LANCZOS)
    return np.asarray(resized).reshape(target[1], target[0], image.shape[2])


def pad(image: np.ndarray, ratio: tuple[int, int]) -> np.ndarray:
    """Pad with the background colour to exactly `ratio` (width x height), the product centred: the
    smallest such canvas that holds the image."""
    ratio_w, ratio_h = ratio
    height, width = image.shape[:2]
    k = max(-(-width // ratio_w), -(-height // ratio_h))
    canvas = np.empty((k * ratio_h, k * ratio_w, image.shape[2]), np.uint8)
    canvas[:] = background_colour(image)
    top, left = (canvas.shape[0] - height) // 2, (canvas.shape[1] - width) // 2
    canvas[top : top + height, left : left + width] = image
    return canvas


def super_resolution(image: np.ndarray, weights: str) -> np.ndarray:
    """Learned x2/x3/x4 super-resolution from a local ESPCN weights file (prodgen.generate.superres)."""
    from prodgen.generate.superres import super_resolve

    return super_resolve(image, weights)


def _weights_file(text: str) -> str:
    from prodgen.generate.superres import load_espcn

    try:
        load_espcn(text)
    except ProdgenError as exc:
        raise ValueError(str(exc)) from None
    return text


def _number(kind: type, low: float, high: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return text

    return parse


def _ratio(text: str) -> tuple[int, int]:
    width, sep, height = text.partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or not 0 < int(width) <= 100 or not 0 < int(height) <= 100:
        raise ValueError("must be WIDTHxHEIGHT, e.g. 4x5")
    return int(width), int(height)


@dataclass(frozen=True)
class Kind:
    apply: Callable[[np.ndarray, Any], np.ndarray]
    parse: Callable[[str], Any] | None  # None: the step takes no argument
    default: str | None
    help: str


STEPS: dict[str, Kind] = {
    "denoise": Kind(denoise, _choice("nlm", "bilateral"), "nlm", "denoise[:nlm|bilateral] non-local means or bilateral filter"),
    "autocontrast": Kind(autocontrast, _number(float, 0, 20), "1", "autocontrast[:CUTOFF%] stretch the luminance range"),
    "clahe": Kind(clahe, _number(float, 0.5, 40), "2", "clahe[:CLIP] adaptive histogram equalisation of the lightness"),
    "sharpen": Kind(sharpen, _number(float, 0, 5), "1", "sharpen[:AMOUNT] unsharp mask"),
    "white-bg": Kind(white_background, _number(int, 0, 128), "24", "white-bg[:TOLERANCE] a plain light background to pure white"),
    "normalise-colour": Kind(normalise_colour, None, None, "normalise-colour white balance from the background"),
    "upscale": Kind(upscale, _number(int, 8, 8192), None, "upscale:SIZE Lanczos, the longer side to SIZE px"),
    "superres": Kind(super_resolution, _weights_file, None, "superres:FILE learned super-resolution from local ESPCN weights"),
    "pad": Kind(pad, _ratio, None, "pad:WxH pad to an aspect ratio (1x1, 3x4, 4x5)"),
}


@dataclass(frozen=True)
class Step:
    name: str
    argument: str | None
    value: Any

    def __str__(self) -> str:
        return self.name if self.argument is None else f"{self.name}:{self.argument}"


def parse_chain(text: str | list[str] | None) -> list[Step]:
    """`denoise,autocontrast,upscale:256` (or its list) -> steps, every default written out, so the
    chain recorded in metadata means the same to a later prodgen."""
    items = text if isinstance(text, list) else [item for item in (text or "").split(",")]
    steps = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        name, sep, argument = item.partition(":")
        kind = STEPS.get(name)
        if kind is None:
            raise ProdgenError(f"Unknown post-processing step {name!r}; the steps: " + "; ".join(k.help for k in STEPS.values()))
        if kind.parse is None:
            if sep:
                raise ProdgenError(f"Post-processing step {name!r} takes no argument.")
            steps.append(Step(name, None, None))
            continue
        argument = argument if sep else kind.default
        if argument is None:
            raise ProdgenError(f"Post-processing step {name!r} needs an argument: {kind.help}.")
        try:
            value = kind.parse(argument)
        except ValueError as exc:
            raise ProdgenError(f"Post-processing step {item!r}: {argument!r} {exc}.") from exc
        steps.append(Step(name, argument, value))
    return steps


def apply_chain(image: np.ndarray, steps: list[Step]) -> np.ndarray:
    for step in steps:
        image = STEPS[step.name].apply(image, step.value)
    return image
