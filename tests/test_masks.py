"""Product masks: a packshot's plain background by a flood fill from the border, anything else by
GrabCut; `prodgen mask` writes masks and transparent cut-outs and never touches the photos."""

from __future__ import annotations

import numpy as np
from PIL import Image

from prodgen.edit.masks import product_mask

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
