"""A prepared catalog: a uint8 image array plus a JSON manifest, stored under `$PRODGEN_HOME/catalogs/NAME`.

Training reads this array directly, so JPEGs are decoded once, at `prepare` time.
The manifest is the single source of truth for categories, splits and provenance;
labels and split arrays are derived from it on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prodgen.errors import ProdgenError
from prodgen.fileio import save_npy_atomic, write_json_atomic
from prodgen.paths import catalog_dir, catalogs_dir

SPLITS = ("train", "val", "test")
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
BUILTIN_CATALOGS = ("fashion-mnist",)
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def validate_catalog_name(name: str) -> str:
    if not _NAME_PATTERN.match(name):
        raise ProdgenError(
            f"Invalid catalog name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."
        )
    return name


@dataclass
class Catalog:
    """Images (N, H, W, C) uint8 with white background, one manifest entry per image.

    `info` holds catalog-wide facts (size, channels, source, preprocessing, counts);
    each entry holds `file`, `sha256`, `category`, `split`, `width`, `height` of the
    original photo, `group` and `attributes`.
    """

    name: str
    images: np.ndarray
    categories: list[str]
    entries: list[dict[str, Any]]
    info: dict[str, Any] = field(default_factory=dict)
    # SHA-256 of the image array as its manifest records it; None for a catalog built in memory
    images_sha256: str | None = None
    labels: np.ndarray = field(init=False)
    splits: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"catalog images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}")
        if len(self.entries) != len(self.images):
            raise ValueError(f"{len(self.entries)} manifest entries for {len(self.images)} images")
        index = {name: i for i, name in enumerate(self.categories)}
        self.labels = np.array([index[e["category"]] for e in self.entries], dtype=np.int64)
        self.splits = np.array([SPLITS.index(e["split"]) for e in self.entries], dtype=np.int64)

    @property
    def height(self) -> int:
        return int(self.images.shape[1])

    @property
    def width(self) -> int:
        return int(self.images.shape[2])

    @property
    def channels(self) -> int:
        return int(self.images.shape[3])

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    @property
    def attribute_values(self) -> dict[str, list[str]]:
        """Each extra attribute column (colour, material, ...) with its sorted distinct values."""
        values: dict[str, set[str]] = {}
        for entry in self.entries:
            for key, value in entry.get("attributes", {}).items():
                values.setdefault(key, set()).add(value)
        return {key: sorted(v) for key, v in sorted(values.items())}

    @property
    def digest(self) -> str:
        """SHA-256 of the images: the manifest's, so a large memory-mapped catalog is not read whole to hash it."""
        if self.images_sha256 is None:
            self.images_sha256 = images_digest(self.images)
        return self.images_sha256

    def split_indices(self, split: str) -> np.ndarray:
        if split not in SPLITS:
            raise ProdgenError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
        return np.flatnonzero(self.splits == SPLITS.index(split))

    def subset(self, split: str, max_images: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of one split, images as an in-memory uint8 array; at most `max_images`
        of them, drawn at random (in file order, for sequential reads) when the split is larger."""
        idx = self.split_indices(split)
        if max_images is not None and len(idx) > max_images:
            idx = np.sort(np.random.default_rng(seed).choice(idx, size=max_images, replace=False))
        return read_rows(self.images, idx), self.labels[idx]

    def counts(self) -> dict[str, dict[str, int]]:
        """{category: {split: count}}."""
        table = {c: {s: 0 for s in SPLITS} for c in self.categories}
        for label, split in zip(self.labels, self.splits):
            table[self.categories[label]][SPLITS[split]] += 1
        return table


def read_rows(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`images[rows]` as an in-memory array. A memory-mapped .npy file (what `load_catalog` opens) is
    read with `pread` rather than through the mapping: for scattered rows the kernel's read-ahead would
    map most of the file into the process (a 5,000-row sample of a 2.3 GiB catalog grew it by 2.3 GiB),
    while `pread` leaves the file in the page cache, outside this process's memory."""
    rows = np.asarray(rows, dtype=np.int64)
    if not (isinstance(images, np.memmap) and images.filename and images.flags.c_contiguous and images.dtype == np.uint8):
        return np.asarray(images[rows])
    row_bytes = int(np.prod(images.shape[1:]))
    out = np.empty((len(rows), *images.shape[1:]), dtype=np.uint8)
    order = np.argsort(rows, kind="stable")  # ascending offsets: sequential reads where rows are near
    fd = os.open(images.filename, os.O_RDONLY)
    try:
        for position in order:
            row = int(rows[position])
            if os.preadv(fd, [out[position]], images.offset + row * row_bytes) != row_bytes:
                raise ProdgenError(f"{images.filename} ends before row {row} of {len(images)}: prepare the catalog again.")
    finally:
        os.close(fd)
    return out


def images_digest(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def save_catalog(catalog: Catalog, root: Path | None = None) -> Path:
    """Write images then manifest, each atomically; the manifest names its images file,
    so a crash at any point leaves the previous manifest pointing at its own complete array."""
    root = root or catalog_dir(catalog.name)
    root.mkdir(parents=True, exist_ok=True)
    digest = catalog.digest
    images_file = f"images-{digest[:16]}.npy"
    if not (root / images_file).exists():
        save_npy_atomic(root / images_file, np.ascontiguousarray(catalog.images))
    manifest = {
        "version": MANIFEST_VERSION,
        "name": catalog.name,
        "images_file": images_file,
        "images_sha256": digest,
        "shape": list(catalog.images.shape),
        "categories": catalog.categories,
        "info": catalog.info,
        "entries": catalog.entries,
    }
    write_json_atomic(root / MANIFEST, manifest)
    for stale in root.glob("images-*.npy"):
        if stale.name != images_file:
            stale.unlink(missing_ok=True)
    return root


def read_manifest(root: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ProdgenError(f"Cannot read catalog manifest {root / MANIFEST}: {exc}") from exc
    if manifest.get("version") != MANIFEST_VERSION:
        raise ProdgenError(f"{root / MANIFEST} has manifest version {manifest.get('version')}, expected {MANIFEST_VERSION}.")
    return manifest


def load_catalog_from(root: Path) -> Catalog:
    manifest = read_manifest(root)
    images = np.load(root / manifest["images_file"], mmap_mode="r", allow_pickle=False)
    if list(images.shape) != manifest["shape"]:
        raise ProdgenError(f"Catalog at {root} is inconsistent: images {images.shape} vs manifest {manifest['shape']}.")
    return Catalog(
        name=manifest["name"],
        images=images,
        categories=manifest["categories"],
        entries=manifest["entries"],
        info=manifest["info"],
        images_sha256=manifest["images_sha256"],
    )


def list_catalogs() -> list[str]:
    if not catalogs_dir().exists():
        return []
    return sorted(p.name for p in catalogs_dir().iterdir() if (p / MANIFEST).exists())


def load_catalog(name: str) -> Catalog:
    """Load a prepared catalog by name; the built-in `fashion-mnist` is prepared on first use."""
    root = catalog_dir(validate_catalog_name(name))
    if not (root / MANIFEST).exists():
        if name == "fashion-mnist":
            from prodgen.data.fashion_mnist import prepare_fashion_mnist

            return prepare_fashion_mnist()
        known = ", ".join(list_catalogs()) or "none yet"
        raise ProdgenError(
            f"No prepared catalog named {name!r} in {catalogs_dir()} (prepared: {known}). "
            f"Create it with: prodgen data prepare --source DIR --name {name}"
        )
    return load_catalog_from(root)
