"""Benchmark: colourways (issue 13) on a white-background catalog, and their speed at 512x512.

    .venv/bin/python benchmarks/bench_colourways.py [--catalog /work/shared/catalogs/clothing-small] \\
        [--grid docs/images/colourways/grid.png]

There is no studio catalog on this machine, so the white-background catalog is made: each photo's
product is cut out with product_mask and put on pure white (255) at the photo's own size, written as
PNG to a temporary folder (or --work, reused when complete; never into the catalog). A product cut by
the photo's edge would leave the border not plain, and product_mask would take the photo for a
lifestyle shot (GrabCut) where a packshot has a margin: so the outer BORDER pixels, the ones
product_mask reads the background from, are set to white as well (how many products that cut is
reported). Each white-background photo then goes through
what `prodgen colourway` does (its own product_mask, then recolour) once per benchmark colour, and
the product's mean colour (mean of its pixels' CIELAB values, scikit-image) is compared with the
target by CIEDE2000 (scikit-image's implementation, an independent ruler). Pixels outside the mask
are compared with the input byte for byte. Speed: 100 white-background photos (spread over the
catalog) padded to squares and resized to 512x512, one thread (OpenCV's too), CPU time (the machine is shared, and
wall time is printed beside it).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import cv2
import numpy as np
import typer
from PIL import Image, ImageDraw, ImageFont
from skimage.color import deltaE_ciede2000, rgb2lab

from prodgen.data.masks import BORDER, product_mask
from prodgen.data.preprocess import decode_photo
from prodgen.edit.colourways import parse_colour, recolour, rgb_of
from prodgen.fileio import write_json_atomic
from prodgen.imaging import save_png

# Hue and lightness spread: red and gold (saturated, at the sRGB gamut's edge), a mid green, navy
# (dark and saturated), a light pink, and the two ends of the lightness scale.
COLOURS = ["red", "gold", "#2e8b57", "navy", "hotpink", "white", "black"]
SPEED_PHOTOS = 100
GRID_CATEGORIES = ["dress", "longsleeve", "pants", "shoes", "t-shirt"]
app = typer.Typer()


def white_background_catalog(catalog: Path, folder: Path) -> dict:
    """Each photo's product cut out onto pure white with a white frame, as folder/<category>-<stem>.png;
    returns the files, how many photos had no product to cut out and how many products the frame cut.
    A folder that holds a complete catalog (its catalog.json) is reused."""
    record = folder / "catalog.json"
    if record.exists():
        return json.loads(record.read_text())
    files, empty, framed = [], 0, 0
    for photo in sorted(catalog.glob("*/*.jpg")):
        image = rgb_of(decode_photo(photo.read_bytes()))
        mask, _ = product_mask(image)
        if not mask.any():
            empty += 1
            continue
        white = np.where(mask[..., None], image, 255).astype(np.uint8)
        frame = np.ones(mask.shape, bool)
        frame[BORDER:-BORDER, BORDER:-BORDER] = False
        framed += int((mask & frame).any())
        white[frame] = 255
        target = folder / f"{photo.parent.name}-{photo.stem}.png"
        save_png(white, target)
        files.append(str(target))
    summary = {"files": files, "no_product_to_cut_out": empty, "cut_by_the_frame": framed}
    write_json_atomic(record, summary)
    return summary


def quality(files: list[Path]) -> dict:
    """Per colour: CIEDE2000 of the product's mean colour (mean of Lab; and, for comparison, the Lab
    of the mean sRGB colour), bit-identical backgrounds, and the product's L* spread kept."""
    targets = {name: parse_colour(name).rgb for name in COLOURS}
    target_lab = {name: rgb2lab(np.array([[rgb]], np.uint8))[0, 0] for name, rgb in targets.items()}
    figures = {name: {"lab_mean": [], "rgb_mean": [], "spread": [], "identical": 0, "worst": ("", 0.0)} for name in COLOURS}
    no_product, methods = 0, {}
    for file in files:
        image = decode_photo(file.read_bytes())
        mask, method = product_mask(image)
        methods[method] = methods.get(method, 0) + 1
        if not mask.any():
            no_product += 1
            continue
        before = rgb2lab(image[mask][None])[0]
        for name, rgb in targets.items():
            result = recolour(image, mask, rgb)
            after = rgb2lab(result[mask][None])[0]
            mean_rgb_lab = rgb2lab((result[mask].mean(axis=0) / 255)[None, None])[0, 0]
            record = figures[name]
            record["lab_mean"].append(float(deltaE_ciede2000(after.mean(axis=0), target_lab[name])))
            record["rgb_mean"].append(float(deltaE_ciede2000(mean_rgb_lab, target_lab[name])))
            record["spread"].append(float(after[:, 0].std() / max(before[:, 0].std(), 1e-6)))
            record["identical"] += int(np.array_equal(result[~mask], image[~mask]))
            if record["lab_mean"][-1] > record["worst"][1]:
                record["worst"] = (file.name, record["lab_mean"][-1])
    return {"colours": figures, "no_product": no_product, "photos": len(files) - no_product, "methods": methods}


def square_512(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    side = max(height, width)
    square = np.full((side, side, 3), 255, np.uint8)
    square[(side - height) // 2 : (side - height) // 2 + height, (side - width) // 2 : (side - width) // 2 + width] = image
    return cv2.resize(square, (512, 512), interpolation=cv2.INTER_AREA)


def speed(files: list[Path], rounds: int = 3) -> dict:
    """Milliseconds per 512x512 photo for the mask and per colourway for the recolouring: the best
    and the median of `rounds` rounds, in CPU time and wall time."""
    spread = files[:: max(1, len(files) // SPEED_PHOTOS)][:SPEED_PHOTOS]  # every category, not the first one's photos
    images = [square_512(decode_photo(file.read_bytes())) for file in spread]
    masks = [product_mask(image)[0] for image in images]
    colours = [parse_colour(name).rgb for name in COLOURS]
    timings: dict[str, list[tuple[float, float]]] = {"mask": [], "recolour": []}
    for _ in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        for image in images:
            product_mask(image)
        timings["mask"].append(((time.process_time() - cpu) / len(images), (time.perf_counter() - wall) / len(images)))
        cpu, wall = time.process_time(), time.perf_counter()
        for image, mask in zip(images, masks):
            for rgb in colours:
                recolour(image, mask, rgb)
        count = len(images) * len(colours)
        timings["recolour"].append(((time.process_time() - cpu) / count, (time.perf_counter() - wall) / count))
    summary = {}
    for part, rows in timings.items():
        cpu, wall = np.array(rows).T * 1000
        summary[part] = {"cpu_ms_best": cpu.min(), "cpu_ms_median": float(np.median(cpu)), "wall_ms_best": wall.min(), "wall_ms_median": float(np.median(wall))}
    summary["product_share"] = float(np.mean([mask.mean() for mask in masks]))
    return summary


def grid(files: list[Path], path: Path, tile: tuple[int, int] = (150, 200)) -> None:
    """One row per category's first white-background photo: the photo, then its colourways, labelled."""
    font = ImageFont.load_default()
    rows = []
    for category in GRID_CATEGORIES:
        file = next(f for f in files if f.name.startswith(f"{category}-"))
        image = decode_photo(file.read_bytes())
        mask, _ = product_mask(image)
        tiles = [image] + [recolour(image, mask, parse_colour(name).rgb) for name in COLOURS]
        rows.append(np.concatenate([fit_tile(t, tile) for t in tiles], axis=1))
    header = Image.new("RGB", (rows[0].shape[1], 18), (255, 255, 255))
    draw = ImageDraw.Draw(header)
    for index, label in enumerate(["photo (on white)", *COLOURS]):
        draw.text((index * tile[0] + 6, 3), label, fill=(20, 20, 20), font=font)
    save_png(np.concatenate([np.asarray(header), *rows], axis=0), path)


def fit_tile(image: np.ndarray, tile: tuple[int, int]) -> np.ndarray:
    """The image scaled to fit the (width, height) tile, centred on white."""
    width, height = tile
    scale = min(width / image.shape[1], height / image.shape[0])
    resized = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), 255, np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas


def report(quality_figures: dict, speed_figures: dict, catalog: dict) -> str:
    methods = ", ".join(f"{count} by {method}" for method, count in quality_figures["methods"].items())
    lines = [f"white-background photos: {quality_figures['photos']} recoloured ({catalog['no_product_to_cut_out']} photos had no product to "
             f"cut out, {catalog['cut_by_the_frame']} products were cut by the white frame; masks: {methods}; "
             f"{quality_figures['no_product']} with no product found)", "",
             "| colour | CIEDE2000 mean | median | max | share <= 10 | background bit-identical | L* spread kept (median) | mean sRGB's CIEDE2000: median / max |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    everything = []
    for name, record in quality_figures["colours"].items():
        misses, rgb_misses = np.array(record["lab_mean"]), np.array(record["rgb_mean"])
        everything.append(misses)
        lines.append(f"| {name} | {misses.mean():.2f} | {np.median(misses):.2f} | {misses.max():.2f} | {(misses <= 10).mean():.1%} | "
                     f"{record['identical']} / {len(misses)} | {np.median(record['spread']):.2f} | {np.median(rgb_misses):.2f} / {rgb_misses.max():.2f} |")
    misses = np.concatenate(everything)
    worst = ", ".join(f"{name} {record['worst'][0]} ({record['worst'][1]:.2f})" for name, record in quality_figures["colours"].items())
    identical = sum(record["identical"] for record in quality_figures["colours"].values())
    lines += [f"| all | {misses.mean():.2f} | {np.median(misses):.2f} | {misses.max():.2f} | {(misses <= 10).mean():.1%} | "
              f"{identical} / {len(misses)} | | |", "", f"worst photo per colour: {worst}"]
    mask, colour = speed_figures["mask"], speed_figures["recolour"]
    lines += ["", f"speed at 512x512 ({SPEED_PHOTOS} photos spread over the catalog, product {speed_figures['product_share']:.0%} of the pixels, one thread; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):", "",
              "| part | CPU ms, best round | CPU ms, median | wall ms, best round | wall ms, median |", "| --- | --- | --- | --- | --- |"]
    for part, row in (("mask (product_mask)", mask), ("recolour, per colour", colour)):
        lines.append(f"| {part} | {row['cpu_ms_best']:.2f} | {row['cpu_ms_median']:.2f} | {row['wall_ms_best']:.2f} | {row['wall_ms_median']:.2f} |")
    lines.append(f"| mask + recolour (one colour) | {mask['cpu_ms_best'] + colour['cpu_ms_best']:.2f} "
                 f"({1000 / (mask['cpu_ms_best'] + colour['cpu_ms_best']):.0f} images/s) | "
                 f"{mask['cpu_ms_median'] + colour['cpu_ms_median']:.2f} ({1000 / (mask['cpu_ms_median'] + colour['cpu_ms_median']):.0f} images/s) | "
                 f"{mask['wall_ms_best'] + colour['wall_ms_best']:.2f} ({1000 / (mask['wall_ms_best'] + colour['wall_ms_best']):.0f} images/s) | "
                 f"{mask['wall_ms_median'] + colour['wall_ms_median']:.2f} ({1000 / (mask['wall_ms_median'] + colour['wall_ms_median']):.0f} images/s) |")
    return "\n".join(lines)


@app.command()
def main(catalog: Path = Path("/work/shared/catalogs/clothing-small"), grid_path: Path = typer.Option(Path("docs/images/colourways/grid.png"), "--grid"),
         work: Path | None = typer.Option(None, help="Folder for the white-background catalog, kept and reused (default: a temporary one).")) -> None:
    cv2.setNumThreads(1)
    with nullcontext(str(work)) if work else tempfile.TemporaryDirectory(prefix="colourways-white-") as folder:
        started = time.perf_counter()
        Path(folder).mkdir(parents=True, exist_ok=True)
        made = white_background_catalog(catalog, Path(folder))
        files = [Path(file) for file in made["files"]]
        print(f"white-background catalog: {len(files)} photos in {time.perf_counter() - started:.0f} s", flush=True)
        speed_figures = speed(files)
        started = time.perf_counter()
        quality_figures = quality(files)
        print(f"quality: {time.perf_counter() - started:.0f} s", flush=True)
        grid(files, grid_path)
    print(report(quality_figures, speed_figures, made))


if __name__ == "__main__":
    app()
