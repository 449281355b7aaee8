"""Reproducible outputs: image i of a seed is the same whatever the count, every image carries its
metadata (embedded and beside it), `prodgen regenerate` rebuilds it bit for bit, truncation narrows
the samples, and bad inputs are clear errors. On the shipped fmnist-cgan (no training needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from prodgen.generate.metadata import read_record, weights_digest
from prodgen.generate.pipeline import ProductGenerator
from prodgen.models.sampling import BLOCK

from .conftest import cli_error, invoke


@pytest.fixture(scope="module")
def cgan():
    return ProductGenerator.load("fmnist-cgan")


def test_image_i_of_a_seed_does_not_depend_on_how_many_are_asked(cgan):
    many = cgan.sample(BLOCK + 3, None, seed=5)
    assert np.array_equal(cgan.sample(3, None, seed=5), many[:3])
    # from inside the second block, alone: same pixels, and the same randomly drawn categories
    assert np.array_equal(cgan.sample(1, None, seed=5, first_index=BLOCK + 1)[0], many[BLOCK + 1])
    assert np.array_equal(cgan.codes_for(2, None, 5, first_index=BLOCK + 1), cgan.codes_for(BLOCK + 3, None, 5)[BLOCK + 1 :])
    assert not np.array_equal(cgan.sample(3, None, seed=6), many[:3])


def test_truncation_trades_variety_for_typical_products(cgan):
    spread = {psi: cgan.sample(200, {"category": "Dress"}, seed=1, truncation=psi).astype(float).std(axis=0).mean() for psi in (1.0, 0.5, 0.1)}
    assert spread[1.0] > spread[0.5] > spread[0.1]


@pytest.mark.parametrize(("image_format", "suffix"), [("png", ".png"), ("jpeg", ".jpg"), ("webp", ".webp")])
def test_each_image_carries_its_metadata_and_regenerates_bit_for_bit(cgan, tmp_path, image_format, suffix):
    made = invoke("generate", "--model", "fmnist-cgan", "--category", "Bag", "-n", 5, "--seed", 11, "--truncation", 0.8,
                  "--format", image_format, "--out", tmp_path / "gen")
    assert made.exit_code == 0, made.output
    image = tmp_path / "gen" / f"Bag-11-0003{suffix}"
    assert Image.open(image).format == {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[image_format]
    assert (tmp_path / "gen" / "Bag-11-sheet.png").exists()
    record = json.loads(image.with_suffix(".json").read_text())
    assert read_record(image) == record  # embedded and beside it: the same record
    assert record["model"] == "fmnist-cgan" and record["model_sha256"] == weights_digest(cgan.module)
    assert (record["seed"], record["index"], record["truncation"], record["conditions"], record["format"]) == (11, 3, 0.8, {"category": "Bag"}, image_format)

    for source in (image, image.with_suffix(".json")):  # from the image, or from its JSON file
        out = tmp_path / f"again-{source.suffix[1:]}"
        rebuilt = invoke("regenerate", source, "--out", out)
        assert rebuilt.exit_code == 0, rebuilt.output
        assert (out / image.name).read_bytes() == image.read_bytes()


def test_the_metadata_names_the_weights_not_the_path(cgan, tmp_path):
    other = ProductGenerator.load("fmnist-vaegan")
    assert weights_digest(other.module) != weights_digest(cgan.module)
    cgan.export(tmp_path / "copy")
    assert weights_digest(ProductGenerator.load(tmp_path / "copy").module) == weights_digest(cgan.module)
    assert invoke("generate", "--model", tmp_path / "copy", "-n", 2, "--out", tmp_path / "gen").exit_code == 0
    assert read_record(tmp_path / "gen" / "sample-0-0001.png")["model"] == str((tmp_path / "copy").resolve())
    # the copy moved: regenerate is told where it is now, and checks its weights
    (tmp_path / "copy").rename(tmp_path / "moved")
    assert invoke("regenerate", tmp_path / "gen" / "sample-0-0001.png", "--out", tmp_path / "re", "--model", tmp_path / "moved").exit_code == 0
    assert "is not the model that made sample-0-0001.png" in cli_error("regenerate", tmp_path / "gen" / "sample-0-0001.png", "--out", tmp_path / "re",
                                                                   "--model", "fmnist-vaegan")


def test_bad_inputs_are_clear_errors(tmp_path):
    assert "Unknown category 'Hat'; known: T-shirt/top, Trouser" in cli_error("generate", "--model", "fmnist-cgan", "--category", "Hat", "--out", tmp_path / "a")
    assert "at least one image" in cli_error("generate", "--model", "fmnist-cgan", "-n", 0, "--out", tmp_path / "a")
    assert "Truncation psi must be in (0, 1]" in cli_error("generate", "--model", "fmnist-cgan", "--truncation", 1.5, "--out", tmp_path / "a")
    assert "Unknown image format 'gif'" in cli_error("generate", "--model", "fmnist-cgan", "--format", "gif", "--out", tmp_path / "a")
    assert not (tmp_path / "a").exists()  # nothing half-made

    plain = tmp_path / "plain.png"
    Image.new("L", (28, 28)).save(plain)
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"seed": 1,')
    partial = tmp_path / "partial.json"
    partial.write_text('{"seed": 1}')
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    for source, message in [(plain, "carries no prodgen metadata"), (corrupt, "is not valid JSON"), (partial, "lacks prodgen_version"),
                            (not_an_image, "is not an image prodgen can read"), (tmp_path / "missing.png", "No file at")]:
        assert message in cli_error("regenerate", source, "--out", tmp_path / "re"), source
