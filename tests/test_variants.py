"""Variants around a product and walks between products, generated (a seed's image) or real (a photo,
inverted for a GAN, encoded for a VAE-GAN); on the shipped models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from prodgen.data import load_catalog
from prodgen.generate.pipeline import ProductGenerator
from prodgen.generate.variants import neighbourhood, seed_anchor
from prodgen.models.sampling import block_latents, stream_latents

from .conftest import cli_error, invoke


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


@pytest.fixture(scope="module")
def shop_photo(tmp_path_factory):
    """A Fashion-MNIST test product as a shop would shoot it (dark on white), and the product as the catalog has it."""
    images, labels = load_catalog("fashion-mnist").subset("test", max_images=200, seed=1)
    path = tmp_path_factory.mktemp("photo") / "tee.png"
    Image.fromarray(255 - images[0][..., 0]).save(path)
    return path, images[0], int(labels[0])


def test_the_base_of_a_seed_is_the_image_generate_draws(tmp_path):
    assert invoke("generate", "--model", "fmnist-cgan", "-n", 5, "--seed", 3, "--out", tmp_path / "gen").exit_code == 0
    made = invoke("variants", "--model", "fmnist-cgan", "--seed", 3, "--index", 4, "-n", 4, "--out", tmp_path / "var")
    assert made.exit_code == 0, made.output
    assert np.array_equal(pixels(tmp_path / "var" / "base.png"), pixels(tmp_path / "gen" / "sample-3-0004.png"))
    assert sorted(p.name for p in (tmp_path / "var").glob("variant-*.png")) == [f"variant-{k:02d}.png" for k in range(4)]
    report = json.loads((tmp_path / "var" / "variants.json").read_text())
    assert report["base"]["index"] == 4 and len(report["latent_distances"]) == 4


def test_the_distance_sets_how_far_variants_stray():
    generator = ProductGenerator.load("fmnist-cgan")
    anchor = seed_anchor(generator, 1, 0, {"category": "Coat"})
    base = generator.draw(anchor.z, anchor.codes).astype(float)

    def spread(distance):
        codes = neighbourhood(anchor, 32, distance, seed=2)
        drawn = generator.draw(codes, anchor.codes.expand(32, -1)).astype(float)
        return (codes - anchor.z).norm(dim=1).mean().item(), np.abs(drawn - base).mean()

    near, mid, far = spread(0.1), spread(0.4), spread(0.9)
    assert near[0] < mid[0] < far[0] and near[1] < mid[1] < far[1]
    # sqrt(1 - d^2) z + d e: the squared norm is on average (1 - d^2) |z|^2 + d^2 z_dim, the prior's z_dim for a typical z
    squared = neighbourhood(anchor, 4000, 0.5).pow(2).sum(dim=1).mean().item()
    assert squared == pytest.approx(0.75 * anchor.z.pow(2).sum().item() + 0.25 * anchor.z.shape[1], rel=0.03)


def test_variants_of_a_real_photo_by_gan_inversion(shop_photo, tmp_path):
    path, product, label = shop_photo
    made = invoke("variants", "--model", "fmnist-cgan", "--like", path, "-n", 3, "--invert-steps", 80, "--out", tmp_path / "like")
    assert made.exit_code == 0, made.output
    report = json.loads((tmp_path / "like" / "variants.json").read_text())["base"]
    assert report["started_from"] == "the best of 8 random codes" and report["conditions"]["category"] == "T-shirt/top" == ["T-shirt/top"][label]
    assert report["ssim"] > 0.6  # the inverted product resembles the photo
    drawn = pixels(tmp_path / "like" / "base.png").astype(float)
    assert np.abs(drawn - product[..., 0]).mean() < np.abs(drawn - 255 + product[..., 0]).mean()  # the catalog's look, not the photo's


def test_a_vaegan_starts_from_its_encoder(shop_photo, tmp_path):
    path, _, _ = shop_photo
    made = invoke("variants", "--model", "fmnist-vaegan", "--like", path, "-n", 2, "--out", tmp_path / "vae")
    assert made.exit_code == 0, made.output
    report = json.loads((tmp_path / "vae" / "variants.json").read_text())["base"]
    assert report["started_from"] == "the encoder's posterior mean" and report["inversion_steps"] == 0 and report["ssim"] > 0.6


def test_a_walk_between_two_seeds_starts_and_ends_at_their_images(tmp_path):
    assert invoke("generate", "--model", "fmnist-cgan", "-n", 3, "--seed", 8, "--category", "Bag", "--out", tmp_path / "gen").exit_code == 0
    walked = invoke("interpolate", "--model", "fmnist-cgan", "--from", "seed:8:0", "--to", "seed:8:2", "--category", "Bag", "--steps", 5,
                    "--out", tmp_path / "walk")
    assert walked.exit_code == 0, walked.output
    strip = pixels(tmp_path / "walk" / "interpolation.png")
    first, last = pixels(tmp_path / "gen" / "Bag-8-0000.png"), pixels(tmp_path / "gen" / "Bag-8-0002.png")
    assert np.array_equal(strip[2:30, 2:30], first) and np.array_equal(strip[2:30, -30:-2], last)  # make_grid's 2-px padding
    assert json.loads((tmp_path / "walk" / "interpolation.json").read_text())["to"]["index"] == 2


@pytest.mark.parametrize(("args", "message"), [
    (["interpolate", "--from", "seed:x", "--to", "seed:1"], "Invalid anchor 'seed:x'"),
    (["interpolate", "--from", "nowhere.png", "--to", "seed:1"], "No photo at nowhere.png"),
    (["variants", "--distance", "0"], "--distance must be in (0, 1]"),
    (["variants", "-n", "0"], "at least one variant"),
    (["variants", "--index", "-1"], "--index must be 0 or more"),
])
def test_bad_inputs_are_clear_errors(tmp_path, args, message):
    assert message in cli_error(args[0], "--model", "fmnist-cgan", *args[1:], "--out", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_gan_needs_inversion_steps_for_a_photo(shop_photo, tmp_path):
    assert "takes inversion steps" in cli_error("variants", "--model", "fmnist-cgan", "--like", shop_photo[0], "--invert-steps", 0, "--out", tmp_path)


def test_neighbourhood_is_reproducible():
    anchor = seed_anchor(ProductGenerator.load("fmnist-cgan"), 0, 0, {})
    assert torch.equal(neighbourhood(anchor, 3, 0.3, seed=5), neighbourhood(anchor, 3, 0.3, seed=5))


@pytest.mark.parametrize("seed", [0, 7, 2**31 - 1])
def test_a_blocks_first_rows_are_the_same_numbers_however_many_are_drawn(seed):
    """stream_latents (variants, the service) draws only the rows up to each image's own; numpy fills in order."""
    full = block_latents(seed, 3, 128)
    for rows in (1, 2, 37, 255, 256):
        assert torch.equal(block_latents(seed, 3, 128, rows=rows), full[:rows])
    assert torch.equal(stream_latents(seed, 3 * 256 + 200, 1, 128), full[200:201])
