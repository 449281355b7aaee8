"""Generated samples in and out: the sampler protocol a generator implements, the sample files
`prodgen eval run --samples` reads, and the checks that turn bad input into a clear message."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

from prodgen.errors import ProdgenError

IMAGE_SUFFIXES = (".png",)


class SampleFn(Protocol):
    """What a generator offers the evaluation: `n` images as uint8 (n, H, W, C) on white,
    conditioned on `labels` (n,) when given, reproducible for a given seed."""

    def __call__(self, n: int, labels: np.ndarray | None, seed: int) -> np.ndarray: ...


def validate_samples(
    images: np.ndarray,
    labels: np.ndarray | None,
    expected_shape: tuple[int, int, int],
    num_classes: int,
    source: str = "samples",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (images, labels) unchanged if they can be evaluated against a catalog whose images
    are `expected_shape` (H, W, C); raise ProdgenError saying what is wrong otherwise."""
    if not isinstance(images, np.ndarray):
        raise ProdgenError(f"{source}: expected a numpy array of images, got {type(images).__name__}.")
    if images.size == 0 or len(images) == 0:
        raise ProdgenError(f"{source}: no images (shape {images.shape}).")
    if images.dtype.kind == "f" and np.isnan(images).any():
        raise ProdgenError(f"{source}: {int(np.isnan(images).sum())} pixel values are NaN.")
    if images.dtype != np.uint8:
        raise ProdgenError(
            f"{source}: images must be uint8 in 0..255, got {images.dtype}. "
            "Convert floats in [0, 1] with (x * 255).round().astype(numpy.uint8)."
        )
    height, width, channels = expected_shape
    if images.ndim != 4 or images.shape[1:] != (height, width, channels):
        raise ProdgenError(
            f"{source}: images have shape {images.shape}; this catalog needs (N, {height}, {width}, {channels}) "
            "in N, height, width, channel order."
        )
    if labels is None:
        return images, None
    labels = np.asarray(labels)
    if labels.shape != (len(images),) or labels.dtype.kind not in "iu":
        raise ProdgenError(f"{source}: labels must be {len(images)} integers, got {labels.dtype} {labels.shape}.")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ProdgenError(f"{source}: labels must lie in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}.")
    return images, labels.astype(np.int64)


def _load_array_file(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False), None
        with np.load(path, allow_pickle=False) as archive:
            if "images" in archive.files:
                return archive["images"], archive["labels"] if "labels" in archive.files else None
            if len(archive.files) == 1:
                return archive[archive.files[0]], None
            raise ProdgenError(f"{path}: an .npz must hold an 'images' array (and optionally 'labels'); it holds {archive.files}.")
    except ValueError as exc:  # object arrays need pickle, which is never allowed
        raise ProdgenError(f"{path}: not a plain numeric {path.suffix} array file ({exc}).") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ProdgenError(f"{path}: cannot read it as {path.suffix} ({exc}).") from exc


def _read_png(path: Path, channels: int) -> np.ndarray:
    try:
        with Image.open(path) as image:
            if image.mode in ("RGBA", "LA", "P"):
                # Transparent pixels become the white background every catalog uses.
                rgba = image.convert("RGBA")
                image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
            array = np.asarray(image.convert("L" if channels == 1 else "RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise ProdgenError(f"{path}: not a readable PNG ({exc}).") from exc
    return array[..., None] if array.ndim == 2 else array


def _load_png_folder(folder: Path, categories: list[str], channels: int) -> tuple[np.ndarray, np.ndarray | None]:
    loose = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir())
    if loose and subfolders:
        raise ProdgenError(f"{folder}: put PNGs either all in the folder or all in category sub-folders, not both.")
    if not subfolders:
        files, labels = loose, None
    else:
        unknown = [p.name for p in subfolders if p.name not in categories]
        if unknown:
            raise ProdgenError(f"{folder}: sub-folders {unknown} are not categories of this catalog ({categories}).")
        files, label_list = [], []
        for sub in subfolders:
            pngs = sorted(p for p in sub.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            files += pngs
            label_list += [categories.index(sub.name)] * len(pngs)
        labels = np.array(label_list, dtype=np.int64)
    if not files:
        raise ProdgenError(f"{folder}: no PNG files found.")
    arrays = [_read_png(p, channels) for p in files]
    odd = next((i for i, a in enumerate(arrays) if a.shape != arrays[0].shape), None)
    if odd is not None:
        raise ProdgenError(
            f"{folder}: images differ in size: {files[0].name} is {arrays[0].shape[:2]}, {files[odd].name} is {arrays[odd].shape[:2]}."
        )
    return np.stack(arrays), labels


def load_samples(path: str | Path, categories: list[str], channels: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Read samples from an .npy (images), an .npz (`images`, optional `labels`), or a folder of
    PNGs, optionally in sub-folders named after categories (which then give the labels)."""
    path = Path(path)
    if not path.exists():
        raise ProdgenError(f"Samples not found: {path}")
    if path.is_dir():
        return _load_png_folder(path, categories, channels)
    if path.suffix in (".npy", ".npz"):
        return _load_array_file(path)
    raise ProdgenError(f"{path}: samples must be a .npy, an .npz or a folder of PNGs.")
