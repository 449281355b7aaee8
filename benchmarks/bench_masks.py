"""Benchmark: prodgen's product masks against masks drawn by hand for 20 clothing-small photos (issue 13).

    .venv/bin/python benchmarks/bench_masks.py [--catalog ../shared/catalogs/clothing-small] [--picture docs/images/masks/hand-vs-found.png]
    .venv/bin/python benchmarks/bench_masks.py --choose      # the photos the hand masks cover: 2 per category, numpy seed 13
    .venv/bin/python benchmarks/bench_masks.py --rasterise   # rewrite tests/data/hand-masks/*.png from polygons.json

Prints the intersection over union of `product_mask` with each hand mask, their mean and minimum,
how many reach 0.9, and the seconds per photo; a packshot speed check (the flood-fill path at
512x512) comes last. The photos stay in the shared folder: only the masks are in the repository.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from prodgen.data.masks import product_mask
from prodgen.data.preprocess import decode_photo

REPOSITORY = Path(__file__).resolve().parent.parent
HAND_MASKS = REPOSITORY / "tests" / "data" / "hand-masks"
CATALOG = REPOSITORY.parent / "shared" / "catalogs" / "clothing-small"
PER_CATEGORY, SEED = 2, 13
TARGET = 0.9
PANEL = 128  # side of each picture panel, pixels


def choose_photos(catalog: Path) -> list[Path]:
    """PER_CATEGORY photos of each category (categories and files in sorted order), drawn with one
    numpy generator seeded with SEED: the same 20 photos on every machine."""
    rng = np.random.default_rng(SEED)
    chosen = []
    for category in sorted(p for p in catalog.iterdir() if p.is_dir()):
        files = sorted(category.glob("*.jpg"))
        chosen += [files[i] for i in sorted(rng.choice(len(files), PER_CATEGORY, replace=False))]
    return chosen


def rasterise(entry: dict) -> np.ndarray:
    """A uint8 mask (255 = product) from the drawn polygons, filled in order: a hole clears what it covers."""
    mask = np.zeros((entry["height"], entry["width"]), np.uint8)
    for polygon in entry["polygons"]:
        cv2.fillPoly(mask, [np.array(polygon["points"], np.int32)], 0 if polygon.get("hole") else 255)
    return mask


def drawn_masks() -> dict[str, dict]:
    return json.loads((HAND_MASKS / "polygons.json").read_text())["masks"]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def panel(image: np.ndarray) -> np.ndarray:
    """The image fitted into a PANEL x PANEL grey square, RGB."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    scale = PANEL / max(image.shape[:2])
    height, width = round(image.shape[0] * scale), round(image.shape[1] * scale)
    square = np.full((PANEL, PANEL, 3), 128, np.uint8)
    top, left = (PANEL - height) // 2, (PANEL - width) // 2
    square[top : top + height, left : left + width] = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return square


def picture(rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, float]], path: Path, columns: int = 4) -> None:
    """Photo | hand mask | found mask for each photo (labelled with its category), `columns` triplets a
    row, the IoU on the found mask."""
    triplets = []
    for category, photo, hand, found, score in rows:
        found_panel = panel((found * 255).astype(np.uint8))
        cv2.putText(found_panel, f"{score:.3f}", (4, PANEL - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (230, 30, 30), 1, cv2.LINE_AA)
        photo_panel = panel(photo)
        cv2.putText(photo_panel, category, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
        gap = np.full((PANEL, 2, 3), 255, np.uint8)
        triplets.append(np.concatenate([photo_panel, gap, panel((hand * 255).astype(np.uint8)), gap, found_panel, np.full((PANEL, 8, 3), 255, np.uint8)], axis=1))
    blank = np.full_like(triplets[0], 255)
    triplets += [blank] * (-len(triplets) % columns)
    lines = [np.concatenate(triplets[i : i + columns], axis=1) for i in range(0, len(triplets), columns)]
    sheet = np.concatenate([np.concatenate([line, np.full((6, line.shape[1], 3), 255, np.uint8)]) for line in lines])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path, optimize=True)


def packshot_speed(count: int = 100, size: int = 512) -> float:
    """Images per second through the flood-fill path: coloured ellipses on a light, slightly noisy backdrop."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    images = []
    for _ in range(count):
        image = np.clip(np.full((size, size, 3), 240.0) + rng.normal(0, 2, (size, size, 3)), 0, 255).astype(np.uint8)
        a, b = rng.uniform(0.2, 0.4, 2) * size
        image[((yy - size / 2) / a) ** 2 + ((xx - size / 2) / b) ** 2 <= 1] = rng.integers(0, 200, 3)
        images.append(image)
    started = time.perf_counter()
    methods = {product_mask(image)[1] for image in images}
    assert methods == {"plain background"}, methods
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=CATALOG, help="the clothing-small folder (category/uuid.jpg)")
    parser.add_argument("--picture", type=Path, help="write photo | hand mask | found mask for every photo here (PNG)")
    parser.add_argument("--choose", action="store_true", help="only list the photos the hand masks are drawn for")
    parser.add_argument("--rasterise", action="store_true", help="only rewrite the hand-mask PNGs from polygons.json")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # figures for one core: the measuring machine shares its 2 cores with training runs

    if args.choose:
        for file in choose_photos(args.catalog):
            print(file.relative_to(args.catalog))
        return
    masks = drawn_masks()
    if args.rasterise:
        for name, entry in masks.items():
            Image.fromarray(rasterise(entry)).save(HAND_MASKS / name)
        print(f"{len(masks)} masks written to {HAND_MASKS}")
        return

    rows, seconds = [], []
    for name, entry in masks.items():
        photo = decode_photo((args.catalog / entry["photo"]).read_bytes())
        hand = np.asarray(Image.open(HAND_MASKS / name)) > 127
        started = time.perf_counter()
        found, method = product_mask(photo)
        seconds.append(time.perf_counter() - started)
        rows.append((entry["photo"].split("/")[0], photo, hand, found, iou(found, hand)))
        print(f"{name.removesuffix('.png'):<52} {photo.shape[1]:>3}x{photo.shape[0]:<3} {method:<16} IoU {rows[-1][4]:.3f}  {seconds[-1]:.3f} s")
    scores = np.array([row[4] for row in rows])
    print(f"mean IoU {scores.mean():.3f}, min {scores.min():.3f}, {int((scores >= TARGET).sum())}/{len(scores)} at >= {TARGET}, "
          f"{np.mean(seconds):.3f} s per photo (max {np.max(seconds):.3f} s)")
    print(f"packshots 512x512 through the flood fill: {packshot_speed():.0f} images/s")
    if args.picture:
        picture(rows, args.picture)
        print(f"picture written to {args.picture}")


if __name__ == "__main__":
    main()
