"""Uploaded photos: at most 10 MB and 40 megapixels, and an image by its content (Pillow's reading of
the header), whatever its name or Content-Type say. They stay in memory: nothing a client sends is
written under a name it chose. Decoding itself is the library's (prodgen.data.preprocess)."""

from __future__ import annotations

import io
import warnings

from fastapi import HTTPException, UploadFile
from PIL import Image, UnidentifiedImageError

from prodgen.data.preprocess import ACCEPTED_FORMATS
from prodgen.serve.settings import MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS


def read_photo(upload: UploadFile, field: str) -> bytes:
    """The bytes of an uploaded photo that passed the size and content checks; else a 413, 415 or 422."""
    data = upload.file.read(MAX_UPLOAD_BYTES + 1)  # routes that take uploads run in the thread pool
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, f"{field} is over the upload limit of {MAX_UPLOAD_BYTES // 2**20} MB.")
    check_image(data, field)
    return data


def check_image(data: bytes, field: str) -> None:
    if not data:
        raise HTTPException(422, f"{field} is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the pixel limit below is lower and says so
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                image_format, (width, height) = image.format, image.size
    except Image.DecompressionBombError:
        raise HTTPException(413, f"{field} has more pixels than Pillow will decode; the limit is {MAX_UPLOAD_PIXELS:,}.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise HTTPException(415, f"{field} is not an image (its content is none of {', '.join(sorted(ACCEPTED_FORMATS))}).") from None
    if image_format not in ACCEPTED_FORMATS:
        raise HTTPException(415, f"{field} is a {image_format} image; accepted: {', '.join(sorted(ACCEPTED_FORMATS))}.")
    if width * height > MAX_UPLOAD_PIXELS:
        raise HTTPException(413, f"{field} is {width}x{height} = {width * height:,} pixels, over the limit of {MAX_UPLOAD_PIXELS:,}.")
