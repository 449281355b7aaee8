"""Product masks: a packshot's plain background by a flood fill from the border, anything else by
GrabCut; `prodgen mask` writes masks and transparent cut-outs and never touches the photos; on 20
clothing-small photos the masks agree with masks drawn by hand (tests/data/hand-masks)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from prodgen.data.masks import product_mask
from prodgen.data.preprocess import decode_photo

from .conftest import cli_error, invoke


def scene(background: str, size: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A red ellipse with a white label inside (the product) on a plain light or a busy background; and its true mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    truth = ((yy - size / 2) / (size * 0.32)) ** 2 + ((xx - size / 2) / (size * 0.25)) ** 2 <= 1
    if background == "plain":
        image = np.full((size, size, 3), 238.0) + rng.normal(0, 2, (size, size, 3))
    else:  # green and blue stripes with noise: no single background colour
        image = np.where(((xx // 6) % 2 == 0)[..., None], [40, 150, 60], [40, 70, 170]).astype(float) + rng.normal(0, 12, (size, size, 3))
    image[truth] = np.array([200, 30, 40]) * (0.75 + 0.25 * xx[truth, None] / size)
    image[(np.abs(yy - size / 2) < 4) & (np.abs(xx - size / 2) < 4)] = 250
    return np.clip(image, 0, 255).astype(np.uint8), truth


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_a_packshot_is_cut_out_by_the_flood_fill_keeping_light_parts_of_the_product():
    image, truth = scene("plain")
    found, method = product_mask(image)
    assert method == "plain background" and iou(found, truth) > 0.97
    assert found[64, 64]  # the white label inside the product is product, not background


def test_a_busy_background_goes_to_grabcut():
    image, truth = scene("busy")
    found, method = product_mask(image)
    assert method == "grabcut" and iou(found, truth) > 0.85
    assert np.array_equal(found, product_mask(image)[0])  # deterministic


def test_a_textured_surface_that_passes_for_plain_goes_to_grabcut_instead_of_leaving_specks():
    """A floor or sheet whose border is near one colour, but whose grain strays past the tolerance
    inside: the flood fill would leave those pixels as specks of product."""
    rng = np.random.default_rng(0)
    _, truth = scene("plain")
    image = np.full(truth.shape + (3,), 200.0) + rng.normal(0, 11, truth.shape + (3,))
    image[truth] = np.array([40, 60, 150]) + rng.normal(0, 6, (truth.sum(), 3))
    found, method = product_mask(np.clip(image, 0, 255).astype(np.uint8))
    assert method == "grabcut" and iou(found, truth) > 0.95


def test_a_small_product_alone_on_a_packshot_is_no_speck():
    image = np.full((200, 200, 3), 240, np.uint8)
    image[100:105, 100:106] = (200, 30, 40)  # 30 pixels, under 1 % of the photo
    found, method = product_mask(image)
    assert method == "plain background" and found.sum() == 30


def test_prodgen_mask_writes_masks_and_cutouts_and_leaves_the_photos(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, kind in (("packshot", "plain"), ("street", "busy")):
        Image.fromarray(scene(kind)[0]).save(photos / f"{name}.png")
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    result = invoke("mask", "--input", photos, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "1 by plain background, 1 by grabcut" in " ".join(result.output.split())
    with Image.open(tmp_path / "out" / "packshot-cutout.png") as cut, Image.open(tmp_path / "out" / "packshot-mask.png") as mask:
        assert cut.mode == "RGBA" and mask.mode == "L"
        alpha, truth = np.asarray(cut)[..., 3], scene("plain")[1]
        assert iou(alpha > 0, truth) > 0.97 and np.array_equal(alpha, np.asarray(mask))
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before
    assert "holds the photos themselves" in cli_error("mask", "--input", photos, "--out", photos)


HAND_MASKS = Path(__file__).resolve().parent / "data" / "hand-masks"
CLOTHING_SMALL = Path(__file__).resolve().parents[2] / "shared" / "catalogs" / "clothing-small"  # beside the repository, never in it


def drawn_masks() -> dict[str, dict]:
    return json.loads((HAND_MASKS / "polygons.json").read_text())["masks"]


def test_the_hand_masks_are_their_polygons_rasterised_at_the_photos_size():
    masks = drawn_masks()
    assert len(masks) == 20 and len({entry["photo"].split("/")[0] for entry in masks.values()}) == 10  # 2 photos of each category
    for name, entry in masks.items():
        drawn = np.zeros((entry["height"], entry["width"]), np.uint8)
        for polygon in entry["polygons"]:
            cv2.fillPoly(drawn, [np.array(polygon["points"], np.int32)], 0 if polygon.get("hole") else 255)
        with Image.open(HAND_MASKS / name) as stored:
            assert stored.mode == "L" and np.array_equal(np.asarray(stored), drawn), name


@pytest.mark.slow
@pytest.mark.skipif(not CLOTHING_SMALL.is_dir(), reason=f"the clothing-small photos are not at {CLOTHING_SMALL} (only their hand-drawn masks are in the repository)")
def test_product_masks_of_20_clothing_photos_reach_a_mean_iou_of_0_9_against_hand_drawn_masks():
    scores = {}
    for name, entry in drawn_masks().items():
        photo = decode_photo((CLOTHING_SMALL / entry["photo"]).read_bytes())
        with Image.open(HAND_MASKS / name) as stored:
            hand = np.asarray(stored) > 127
        assert hand.shape == photo.shape[:2], name
        scores[name.removesuffix(".png")] = iou(product_mask(photo)[0], hand)
    per_photo = ", ".join(f"{name} {score:.3f}" for name, score in scores.items())
    assert np.mean(list(scores.values())) >= 0.9, f"mean IoU {np.mean(list(scores.values())):.3f}; per photo: {per_photo}"
