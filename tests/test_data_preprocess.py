"""Decoding and normalising single photos: formats, modes, orientation, fit."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from prodgen.data.preprocess import BadImage, PrepSettings, preprocess_image

from .conftest import product_photo

SQUARE = PrepSettings(width=32, height=32, channels=3)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_every_accepted_format_decodes_to_the_requested_shape(fmt):
    array, original = preprocess_image(encode(product_photo(60, 40, seed=1), fmt), SQUARE)
    assert array.shape == (32, 32, 3) and array.dtype == np.uint8
    assert original == (60, 40)


def test_transparent_pixels_become_white_background():
    rgba = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    rgba.paste((200, 0, 0, 255), (10, 10, 30, 30))
    array, _ = preprocess_image(encode(rgba, "PNG"), SQUARE)
    assert (array[0, 0] == 255).all(), "transparent corner must be composited on white"
    assert array[16, 16, 0] > 150 and array[16, 16, 1] < 60, "opaque product pixels stay red"


def test_palette_image_with_transparency_is_composited_on_white():
    palette = Image.new("P", (40, 40), 0)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(1, (10, 10, 30, 30))
    array, _ = preprocess_image(encode(palette, "PNG", transparency=0), SQUARE)
    assert (array[0, 0] == 255).all()
    assert array[16, 16, 2] > 200 and array[16, 16, 0] < 60


def test_cmyk_jpeg_becomes_rgb():
    array, _ = preprocess_image(encode(product_photo(40, 40, seed=2, mode="CMYK"), "JPEG"), SQUARE)
    assert array.shape == (32, 32, 3)
    assert abs(int(array[0, 0, 0]) - 230) < 20


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    wide = np.full((40, 40), 65535, dtype=np.uint16)
    wide[:, :20] = 32768
    array, _ = preprocess_image(encode(Image.fromarray(wide), "TIFF"), PrepSettings(width=40, height=40, channels=1))
    assert array.shape == (40, 40, 1)
    assert array[20, 5, 0] == 128 and array[20, 35, 0] == 255


def test_exif_orientation_is_applied_before_padding():
    wide = product_photo(60, 20, seed=3)  # stored landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": the product is really portrait
    array, original = preprocess_image(encode(wide, "JPEG", exif=exif.tobytes()), SQUARE)
    assert original == (60, 20)
    # portrait content padded to square: white bands left and right, content touches top and bottom
    assert (array[16, 0] > 240).all() and (array[16, -1] > 240).all()
    assert (array[0, 16] < 240).any()


def test_pad_keeps_aspect_ratio_and_crop_fills_the_frame():
    photo = encode(product_photo(80, 40, seed=4), "PNG")
    padded, _ = preprocess_image(photo, PrepSettings(width=32, height=32, fit="pad"))
    cropped, _ = preprocess_image(photo, PrepSettings(width=32, height=32, fit="crop"))
    assert (padded[0] == 255).all() and (padded[-1] == 255).all(), "pad adds white bands above and below"
    assert (cropped[0] == 230).all(), "crop has no padding: the top row is the photo's floor"


def test_non_square_output_is_height_by_width():
    array, _ = preprocess_image(encode(product_photo(50, 50, seed=5), "PNG"), PrepSettings(width=64, height=80))
    assert array.shape == (80, 64, 3)


def test_greyscale_output_has_one_channel():
    array, _ = preprocess_image(encode(product_photo(50, 50, seed=6), "JPEG"), PrepSettings(width=32, height=32, channels=1))
    assert array.shape == (32, 32, 1)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size: what a decompression bomb looks like before decoding."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def _truncated_jpeg() -> bytes:
    noisy = np.random.default_rng(0).integers(0, 255, size=(64, 64, 3), dtype=np.uint8)
    whole = encode(Image.fromarray(noisy), "JPEG")
    return whole[: len(whole) * 2 // 3]


TRUNCATED_JPEG = _truncated_jpeg()


@pytest.mark.parametrize(
    ("data", "settings", "reason"),
    [
        (b"", SQUARE, "empty file"),
        (b"this is a text file, not a photo\n" * 10, SQUARE, "not an image"),
        (png_header_only(100_000, 100_000), SQUARE, "decompression bomb"),
        (png_header_only(5_000, 5_000), PrepSettings(width=32, height=32, max_pixels=1_000_000), "decompression bomb"),
        (encode(product_photo(10, 40, seed=7), "PNG"), SQUARE, "too small"),
        (TRUNCATED_JPEG, SQUARE, "corrupt or truncated"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 50, SQUARE, "not an image"),
    ],
    ids=["zero-byte", "text", "bomb-header", "over-limit", "too-small", "truncated-jpeg", "broken-png"],
)
def test_bad_files_raise_bad_image_with_a_reason(data, settings, reason):
    with pytest.raises(BadImage, match=reason):
        preprocess_image(data, settings)


def test_settings_reject_impossible_values():
    with pytest.raises(ValueError, match="channels"):
        PrepSettings(channels=2)
    with pytest.raises(ValueError, match="fit"):
        PrepSettings(fit="stretch")


def floor_photo(product_box: tuple[int, int, int, int], size: tuple[int, int] = (120, 90), seed: int = 0) -> tuple[bytes, np.ndarray]:
    """PNG bytes of a red product (top, left, bottom, right) on a light, slightly noisy floor, and the product's mask."""
    rng = np.random.default_rng(seed)
    width, height = size
    pixels = np.clip(np.full((height, width, 3), 225.0) + rng.normal(0, 2, (height, width, 3)), 0, 255).astype(np.uint8)
    top, left, bottom, right = product_box
    pixels[top:bottom, left:right] = (180, 30, 40)
    truth = np.zeros((height, width), bool)
    truth[top:bottom, left:right] = True
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue(), truth


def test_background_white_centres_each_product_on_pure_white_at_one_scale():
    settings = PrepSettings(width=64, height=64, background="white", min_side=1)
    extents = []
    for box in ((10, 10, 40, 30), (30, 50, 85, 110)):  # a small product near a corner, a large one off centre
        array, _ = preprocess_image(floor_photo(box)[0], settings)
        product = (array < 200).any(axis=2)  # the red product, without the resampling's light fringe
        rows, columns = np.flatnonzero(product.any(axis=1)), np.flatnonzero(product.any(axis=0))
        extents.append(max(rows[-1] - rows[0], columns[-1] - columns[0]) + 1)
        assert abs((rows[0] + rows[-1]) / 2 - 31.5) <= 1 and abs((columns[0] + columns[-1]) / 2 - 31.5) <= 1  # centred
        fringe = cv2.dilate(product.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        assert (array[~fringe] == 255).all()  # the floor is gone: pure white
    assert abs(extents[0] - extents[1]) <= 1 and extents[0] >= 64 * 0.85  # one scale: the longer side fills the frame but the margin


def test_background_white_skips_a_photo_without_a_product_and_refuses_a_crop():
    empty = io.BytesIO()
    Image.fromarray(np.full((60, 60, 3), 230, np.uint8)).save(empty, format="PNG")
    with pytest.raises(BadImage, match="no product found"):
        preprocess_image(empty.getvalue(), PrepSettings(background="white", min_side=1))
    with pytest.raises(ValueError, match="use fit pad"):
        PrepSettings(background="white", fit="crop")
