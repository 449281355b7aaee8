"""Images on disk: PNG, JPEG or WebP, a generated one with its metadata embedded and in a JSON file
beside it, written atomically (a temporary file, then a rename); regeneration from that metadata, bit
for bit; and post-processing of a folder of photos."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from prodgen.errors import ProdgenError
from prodgen.fileio import write_bulk, write_bytes_atomic
from prodgen.generate.metadata import exif_bytes, png_text_chunk, read_record, to_json
from prodgen.generate.pipeline import ProductGenerator
from prodgen.generate.postprocess import apply_chain, parse_chain

# format name -> (file suffix, Pillow's encoder options). Fixed options: the same pixels and metadata
# always encode to the same bytes, which is what makes regeneration checkable.
FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    "png": (".png", {}),  # OpenCV's encoder, see encode
    "jpeg": (".jpg", {"format": "JPEG", "quality": 95, "subsampling": 0}),
    "webp": (".webp", {"format": "WEBP", "quality": 95, "method": 4}),
}


PNG_HEADER_END = 8 + 25  # the signature, then the IHDR chunk (length, type, 13 bytes, CRC): text chunks may follow it


def check_format(name: str) -> str:
    if name not in FORMATS:
        raise ProdgenError(f"Unknown image format {name!r}; choose one of {', '.join(FORMATS)}.")
    return name


def encode(pixels: np.ndarray, image_format: str, metadata: str | None = None) -> bytes:
    """An (H, W, 1|3) uint8 image as bytes of the format, with the metadata (a record's JSON) embedded
    if given. PNG goes through OpenCV's encoder with the text chunk spliced in after the header (a
    tenth of Pillow's time on small images, which matters at thousands of images a second); JPEG and
    WebP carry EXIF, which Pillow writes."""
    if image_format == "png":
        ok, encoded = cv2.imencode(".png", pixels[..., 0] if pixels.shape[-1] == 1 else np.ascontiguousarray(pixels[..., ::-1]))
        if not ok:
            raise ProdgenError(f"OpenCV could not encode a {pixels.shape} image as PNG.")
        data = encoded.tobytes()
        return data if metadata is None else data[:PNG_HEADER_END] + png_text_chunk(metadata) + data[PNG_HEADER_END:]
    _, options = FORMATS[image_format]
    image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    buffer = io.BytesIO()
    image.save(buffer, **options, **({} if metadata is None else {"exif": exif_bytes(metadata)}))
    return buffer.getvalue()


def encoded_files(pixels: np.ndarray, record: dict[str, Any]) -> tuple[str, bytes, bytes]:
    """(the record's JSON, the image file's bytes with it embedded, the JSON sidecar's bytes)."""
    metadata = to_json(record)
    return metadata, encode(pixels, record["format"], metadata), (metadata + "\n").encode("ascii")


def write_image(path: Path, pixels: np.ndarray, record: dict[str, Any], bulk: bool = False) -> str:
    """The image and its JSON sidecar (`<stem>.json`), each complete or absent; returns the record's
    JSON. `bulk`: written by a generation job (fileio.write_bulk)."""
    metadata, data, sidecar = encoded_files(pixels, record)
    if bulk:
        name = str(path)
        write_bulk(name[: -len(path.suffix)] + ".json", sidecar)
        write_bulk(name, data)
    else:
        write_bytes_atomic(path.with_suffix(".json"), sidecar)
        write_bytes_atomic(path, data)
    return metadata


def regenerate(source: Path, out: Path, model: str | None = None) -> Path:
    """Make the image a metadata record describes again, under the source's own name in `out`. The
    model (the record's, or `model` when it was moved) must have the recorded weights."""
    record = read_record(source)
    check_format(record["format"])
    steps = parse_chain(record["post"])
    generator = ProductGenerator.load(model or record["model"])
    if generator.weights_sha256 != record["model_sha256"]:
        raise ProdgenError(f"{generator.source} is not the model that made {source.name}: its weights' SHA-256 is "
                           f"{generator.weights_sha256[:12]}..., the image's metadata says {record['model_sha256'][:12]}...")
    generator.use_backend(record["backend"])  # backends agree to 1e-3, not bit for bit: the same one again
    index = record["index"]
    pixels = generator.sample(1, record["asked"], seed=record["seed"], first_index=index, truncation=record["truncation"])[0]
    conditions = generator.conditions.decode(generator.codes_for(1, record["asked"], record["seed"], first_index=index)[0])
    if conditions != record["conditions"]:
        raise ProdgenError(f"{source}: the metadata says conditions {record['conditions']}, the model draws {conditions} for image {index}.")
    name = source.name if source.suffix.lower() != ".json" else source.stem + FORMATS[record["format"]][0]
    target = out / name
    write_image(target, apply_chain(pixels, steps), record)
    return target


def refuse_source_folder(files: list[Path], out: Path) -> None:
    """An output folder that holds one of the photos is refused before anything is read, so no source can be overwritten."""
    if any(file.resolve().parent == out.resolve() for file in files):
        raise ProdgenError(f"{out} holds the photos themselves: choose another output folder, so no source can be overwritten.")


def each_photo(files: list[Path], out: Path, skipped: list[tuple[Path, str]]) -> Iterator[tuple[Path, np.ndarray]]:
    """Each readable photo's pixels at its own size, one at a time, for a command that writes into
    `out`: an `out` that holds one of the photos is refused before anything is read, so no source can
    be overwritten; a file that is not a usable image goes to `skipped` with the reason."""
    from prodgen.data.preprocess import BadImage, decode_photo

    refuse_source_folder(files, out)
    for file in files:
        try:
            yield file, decode_photo(file.read_bytes())
        except BadImage as exc:
            skipped.append((file, str(exc)))


def postprocess_photos(files: list[Path], chain: str, out: Path, image_format: str = "png") -> tuple[list[Path], list[tuple[Path, str]]]:
    """A merchant's photos through a post-processing chain: `out/<stem>.<format>` each, the sources
    untouched. Returns (written, skipped with why)."""
    check_format(image_format)
    steps = parse_chain(chain)
    if not steps:
        raise ProdgenError("Say which post-processing steps to run: --post denoise,autocontrast,white-bg,upscale:256 (for example).")
    written, skipped = [], []
    for file, pixels in each_photo(files, out, skipped):
        target = out / (file.stem + FORMATS[image_format][0])
        write_bytes_atomic(target, encode(apply_chain(pixels, steps), image_format))
        written.append(target)
    return written, skipped
