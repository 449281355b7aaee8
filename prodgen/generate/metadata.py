"""Provenance of a generated image: everything needed to make it again, bit for bit. It travels inside
the file (a PNG text chunk, or the EXIF UserComment of a JPEG or WebP) and in a JSON file beside it,
so a renamed image or a lost sidecar still says where it came from."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError

from prodgen import __version__
from prodgen.errors import ProdgenError

PNG_KEY = "prodgen"  # the PNG text chunk's keyword
EXIF_IFD, USER_COMMENT = 0x8769, 0x9286  # the Exif sub-IFD and its UserComment tag
ASCII_PREFIX = b"ASCII\x00\x00\x00"  # UserComment's character-code header (JIS X 0208 / Unicode / undefined / ASCII)
REQUIRED = ("prodgen_version", "model", "model_sha256", "seed", "index", "asked", "conditions", "truncation", "post", "backend", "format")


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 of a network's tensors (names, dtypes, shapes, bytes), the same whether they were read
    from a shipped safetensors file or a training checkpoint."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def image_record(*, model: str, model_sha256: str, seed: int, index: int, asked: dict[str, str], conditions: dict[str, str],
                 truncation: float, post: list[str], backend: str, format: str) -> dict[str, Any]:
    """The metadata of one generated image. No time stamp and no path: the same request gives the same bytes."""
    return {"prodgen_version": __version__, "model": model, "model_sha256": model_sha256, "seed": seed, "index": index, "asked": asked,
            "conditions": conditions, "truncation": truncation, "post": post, "backend": backend, "format": format}


def to_json(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def png_text_chunk(metadata: str) -> bytes:
    """A PNG tEXt chunk (keyword, NUL, Latin-1 text; length and CRC-32 around it) holding a record's JSON."""
    body = b"tEXt" + PNG_KEY.encode("latin-1") + b"\0" + metadata.encode("latin-1")
    return struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def exif_bytes(metadata: str) -> bytes:
    """EXIF holding a record's JSON as the UserComment."""
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[USER_COMMENT] = ASCII_PREFIX + metadata.encode("ascii")
    return exif.tobytes()


def check_record(record: Any, source: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ProdgenError(f"{source}: the prodgen metadata is not a JSON object.")
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise ProdgenError(f"{source}: the prodgen metadata lacks {', '.join(missing)}.")
    return record


def embedded_record(data: bytes, source: str) -> dict[str, Any]:
    """The record inside an image file's bytes (PNG text chunk or EXIF UserComment)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            text = image.info.get(PNG_KEY) if image.format == "PNG" else None
            if text is None:
                comment = image.getexif().get_ifd(EXIF_IFD).get(USER_COMMENT)
                if isinstance(comment, bytes) and comment.startswith(ASCII_PREFIX):
                    text = comment[len(ASCII_PREFIX) :].decode("ascii", errors="replace")
                elif isinstance(comment, str):
                    text = comment
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ProdgenError(f"{source} is not an image prodgen can read: {exc}") from exc
    if not text:
        raise ProdgenError(f"{source} carries no prodgen metadata (it was not made by `prodgen generate`, or its metadata was stripped); "
                           "give its JSON file instead.")
    return check_record(parse_json(text, source), source)


def parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ProdgenError(f"{source}: the prodgen metadata is not valid JSON ({exc}).") from exc


def read_record(path: Path) -> dict[str, Any]:
    """The record of a generated image, from its JSON file or from the image itself."""
    if not path.is_file():
        raise ProdgenError(f"No file at {path}.")
    data = path.read_bytes()
    if path.suffix.lower() == ".json":
        return check_record(parse_json(data.decode("utf-8", errors="replace"), str(path)), str(path))
    return embedded_record(data, str(path))
