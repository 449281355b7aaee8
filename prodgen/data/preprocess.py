"""Decode one product photo into a fixed-size uint8 array on a white background.

Every way a file can be unusable raises `BadImage` with a reason for the skip report;
nothing here writes to the source file.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from prodgen.data.masks import product_mask

ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF"})
FIT_MODES = ("pad", "crop")
BACKGROUNDS = ("keep", "white")
WHITE_RGB = (255, 255, 255)
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "La", "RGBa", "PA"})


class BadImage(Exception):
    """The file cannot become a catalog image; `str(exc)` is the reason shown in the skip report."""


@dataclass(frozen=True)
class PrepSettings:
    width: int = 64
    height: int = 64
    channels: int = 3
    fit: str = "pad"
    min_side: int = 16
    max_pixels: int = 40_000_000
    background: str = "keep"  # white: each product cut out (its mask) and centred on pure white at one scale

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.fit not in FIT_MODES:
            raise ValueError(f"fit must be one of {FIT_MODES}, got {self.fit!r}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")
        if self.background == "white" and self.fit != "pad":
            raise ValueError("background white centres the whole product on white: use fit pad, since a crop would cut it")
        if not (8 <= self.width <= 1024 and 8 <= self.height <= 1024):
            raise ValueError(f"size must be between 8 and 1024 px per side, got {self.width}x{self.height}")

    def as_dict(self) -> dict:
        return asdict(self)


def _open_checked(data: bytes, settings: PrepSettings) -> Image.Image:
    if not data:
        raise BadImage("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(f"decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise BadImage("not an image (unrecognised format)") from exc
    except Exception as exc:  # Pillow raises many types for malformed headers
        raise BadImage(f"unreadable image header: {exc}") from exc
    if image.format not in ACCEPTED_FORMATS:
        raise BadImage(f"unsupported format {image.format}")
    width, height = image.size
    if width * height > settings.max_pixels:
        raise BadImage(f"decompression bomb: {width}x{height} = {width * height} pixels exceeds the limit of {settings.max_pixels}")
    if min(width, height) < settings.min_side:
        raise BadImage(f"too small: {width}x{height} (minimum side {settings.min_side} px)")
    return image


def _decode(image: Image.Image, draft_side: int | None) -> Image.Image:
    if draft_side is not None and image.format in ("JPEG", "MPO"):
        # DCT-domain downscaling: decoding a 4000 px photo for a 64 px thumbnail at full size wastes time.
        image.draft(image.mode, (draft_side, draft_side))
    try:
        image.load()
    except Exception as exc:
        raise BadImage(f"corrupt or truncated image data: {exc}") from exc
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:
        pass  # a malformed EXIF block only loses the orientation hint; the pixels are fine
    return image


def _to_rgb_or_l(image: Image.Image) -> Image.Image:
    """Normalise every mode to 8-bit RGB or L; transparency is composited onto white."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(image, dtype=np.int64)
        return Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8), mode="L")
    if mode == "F":
        return Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8), mode="L")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "1":
        image = image.convert("L")
    if image.mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, WHITE_RGB + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    return image


PRODUCT_MARGIN = 0.05  # white left around a cut-out product on each side, as a share of its longer side
MIN_PRODUCT_SHARE = 0.01  # a mask smaller than this share of the photo is no product found


def on_white(image: Image.Image) -> Image.Image:
    """The product cut out by its mask and placed on pure white, cropped to its bounding box plus a
    margin, so that padding to the catalog's size centres it at one scale: a catalog of amateur photos
    then looks like a studio's packshots. Raises BadImage when no product is found."""
    pixels = np.asarray(image.convert("RGB"))
    mask, _ = product_mask(pixels)
    if mask.sum() < MIN_PRODUCT_SHARE * mask.size:
        raise BadImage("no product found (background white: the product mask is empty)")
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
    margin = round(PRODUCT_MARGIN * max(bottom - top, right - left))
    canvas = np.full((bottom - top + 2 * margin, right - left + 2 * margin, 3), 255, np.uint8)
    canvas[margin : margin + bottom - top, margin : margin + right - left] = np.where(mask[top:bottom, left:right, None], pixels[top:bottom, left:right], 255)
    return Image.fromarray(canvas).convert(image.mode)


def _resize(image: Image.Image, settings: PrepSettings) -> Image.Image:
    size = (settings.width, settings.height)
    fill = 255 if image.mode == "L" else WHITE_RGB
    if settings.fit == "pad":
        return ImageOps.pad(image, size, method=Image.Resampling.LANCZOS, color=fill)
    return ImageOps.fit(image, size, method=Image.Resampling.LANCZOS)


def preprocess_image(data: bytes, settings: PrepSettings) -> tuple[np.ndarray, tuple[int, int]]:
    """Bytes of one photo -> ((H, W, C) uint8 array, original (width, height))."""
    image = _open_checked(data, settings)
    original_size = image.size  # before JPEG draft mode shrinks it
    image = _decode(image, 2 * max(settings.width, settings.height))
    image = _to_rgb_or_l(image)
    if settings.background == "white":
        image = on_white(image)
    image = image.convert("L" if settings.channels == 1 else "RGB")
    array = np.asarray(_resize(image, settings), dtype=np.uint8)
    if array.ndim == 2:
        array = array[..., None]
    return array, original_size


def decode_photo(data: bytes) -> np.ndarray:
    """Bytes of one photo -> (H, W, 1|3) uint8 at its own size, upright (EXIF orientation), transparency
    on white; the same checks as catalog preparation (format, decompression bombs). Raises BadImage."""
    image = _to_rgb_or_l(_decode(_open_checked(data, PrepSettings(min_side=1)), None))
    array = np.asarray(image, dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array


def prepare_like_catalog(data: bytes, preprocessing: dict) -> np.ndarray:
    """A new photo made into an image like a catalog's, from the catalog's `preprocessing` record:
    its size, channels and fit. A catalog of light products on black (Fashion-MNIST's standard look)
    gets the grey levels inverted, since a shop photo shows a product on white. Raises BadImage."""
    fit = preprocessing.get("fit", "pad")
    # "black" marks Fashion-MNIST's look (inverted below); "white", a catalog of products cut out onto white
    background = "white" if preprocessing.get("background") == "white" else "keep"
    settings = PrepSettings(width=preprocessing["width"], height=preprocessing["height"], channels=preprocessing["channels"],
                            fit=fit if fit in FIT_MODES else "pad", min_side=1, background=background)
    array, _ = preprocess_image(data, settings)
    return 255 - array if preprocessing.get("background") == "black" else array.copy()  # writable, like a catalog's
