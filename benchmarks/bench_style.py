"""Benchmark: neural style transfer (issue 13), against its targets: the Gram-matrix style distance to
the style image falls by at least half while the content keeps its structure (SSIM between the edge
maps of content and result at least 0.6), for both methods; AdaIN at least 20 images/s at 256x256.
It also chooses the default feature network: each candidate is measured the same way.

    .venv/bin/python benchmarks/bench_style.py quality --features random-multiscale --methods adain
    .venv/bin/python benchmarks/bench_style.py quality --features random-multiscale --methods adain --no-detail
    .venv/bin/python benchmarks/bench_style.py quality --features random-multiscale --methods gatys --gatys-styles 2
    (the same three with --features catalog:clothing)
    .venv/bin/python benchmarks/bench_style.py speed --threads 2
    .venv/bin/python benchmarks/bench_style.py pictures --features random-multiscale --compare catalog:clothing

Content: the 10 held-out clothing-small photos (the first of each category, never seen by the decoders'
training), at the CLI's default size (longer side 256). Styles: one procedural texture of each kind
from seeds training never drew, and a fabric crop of a held-out photo (style_textures.py). AdaIN runs
every photo x style pair (60); Gatys, at a minute or two a pair on this shared machine, each photo with
--gatys-styles of the styles in turn. The style distance is gatys's loss, style_distance (mean over
style layers of ||G - G_style||^2 / ||G_style||^2), reported as after / before in three judges: the
method's own features (what it optimised: circular), the other candidate, and an independent random
VGG-19 (random_vgg19). Edges: Sobel gradient magnitude of the grey image (skimage.filters.sobel),
compared by SSIM (skimage, data range of the pair). Figures go to results/style-*.json, pictures to
docs/images/style/.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import typer
from skimage.color import rgb2gray
from skimage.filters import sobel
from skimage.metrics import structural_similarity

from prodgen.data.preprocess import decode_photo
from prodgen.edit.style import DEFAULT_STEPS, DEFAULT_STRENGTH, resize, rgb, stylise, to_tensor, working_size
from prodgen.edit.style.adain import adain_stylise, find_decoder
from prodgen.edit.style.features import VGG_STYLE, StyleFeatures, VGG19Features, load_features, style_distance, vgg19_conv_indices
from prodgen.errors import ProdgenError
from prodgen.fileio import atomic_path, write_json_atomic
from prodgen.imaging import labelled_rows

sys.path.insert(0, str(Path(__file__).resolve().parent))
from style_textures import benchmark_styles, held_out_photos  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PICTURES = Path(__file__).resolve().parent.parent / "docs" / "images" / "style"
SIZE = 256

app = typer.Typer(no_args_is_help=True)


def contents(size: int) -> dict[str, np.ndarray]:
    """The held-out photos at the working size stylise uses (so results need no resizing back)."""
    photos = {}
    for path in held_out_photos():
        photo = rgb(decode_photo(path.read_bytes()))
        photos[f"{path.parent.name}/{path.stem[:8]}"] = resize(photo, *working_size(*photo.shape[:2], size))
    return photos


def edge_ssim(content: np.ndarray, result: np.ndarray) -> float:
    first, second = sobel(rgb2gray(content)), sobel(rgb2gray(result))
    return float(structural_similarity(first, second, data_range=float(max(first.max(), second.max()))))


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": torch.get_num_threads(), "torch": torch.__version__,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


RANDOM_VGG = "random-vgg19"


def random_vgg19(seed: int = 0) -> VGG19Features:
    """The independent judge: VGG-19's layout at half torchvision's widths (32 to 256 channels: a quarter of the
    arithmetic), He-initialised from a fixed seed, style layers relu1_1 to relu4_1. He, Wang & Hopcroft (2016)
    showed random-weight VGG features carry style; neither candidate was built or trained on it."""
    generator = torch.Generator().manual_seed(seed)
    state, in_channels = {}, 3
    for index, name in vgg19_conv_indices():
        out_channels = 32 * 2 ** min(int(name[4]) - 1, 3)
        state[f"features.{index}.weight"] = torch.randn(out_channels, in_channels, 3, 3, generator=generator) * (2 / (9 * in_channels)) ** 0.5
        state[f"features.{index}.bias"] = torch.zeros(out_channels)
        in_channels = out_channels
    network = VGG19Features(state, Path(RANDOM_VGG))
    network.style_layers = VGG_STYLE[:4]
    return network


def judge(name: str) -> StyleFeatures:
    return random_vgg19() if name == RANDOM_VGG else load_features(name)


def ratio_summary(ratios: np.ndarray) -> dict:
    return {"median": round(float(np.median(ratios)), 3), "mean": round(float(ratios.mean()), 3), "share_halved": round(float((ratios <= 0.5).mean()), 3)}


@app.command()
def quality(features: str = "random-multiscale", judges: str = f"random-multiscale,catalog:clothing,{RANDOM_VGG}", size: int = SIZE,
            steps: int = DEFAULT_STEPS, threads: int = 1, methods: str = "gatys,adain", gatys_styles: int = 3, detail: bool = True) -> None:
    """For every content x style pair: the style distance before and after in each judge's features, and the edge SSIM.
    A judge equal to --features is the method's own loss (circular); the others never took part."""
    torch.set_num_threads(threads)
    network = load_features(features)
    referees = {name: judge(name) for name in judges.split(",")}
    photos, styles = contents(size), benchmark_styles(size)
    rows = []
    for method in methods.split(","):
        if method == "adain":
            try:
                find_decoder(network)
            except ProdgenError as exc:
                print(f"skipping adain: {exc}")
                continue
        for index, (photo_name, photo) in enumerate(photos.items()):
            # Gatys takes a minute or two a pair on this shared machine: each photo gets `gatys_styles` of the styles, in turn
            chosen = list(styles) if method == "adain" else [list(styles)[(index + k) % len(styles)] for k in range(gatys_styles)]
            for style_name in chosen:
                style = styles[style_name]
                started = time.perf_counter()
                result = stylise(photo, style, method=method, features=network, size=size, steps=steps, detail=detail)
                seconds = time.perf_counter() - started
                content_t, style_t, result_t = to_tensor(photo), to_tensor(style), to_tensor(result)
                row = {"method": method, "photo": photo_name, "style": style_name, "seconds": round(seconds, 3), "edge_ssim": edge_ssim(photo, result),
                       "distance": {name: [style_distance(referee, content_t, style_t).item(), style_distance(referee, result_t, style_t).item()]
                                    for name, referee in referees.items()}}
                rows.append(row)
                print(json.dumps(row), flush=True)
    summary = {}
    for method in sorted({row["method"] for row in rows}):
        mine = [row for row in rows if row["method"] == method]
        ssim = np.array([row["edge_ssim"] for row in mine])
        ratios = {name: np.array([row["distance"][name][1] / row["distance"][name][0] for row in mine]) for name in referees}
        summary[method] = {
            "pairs": len(mine),
            "style_distance_ratio": {name: ratio_summary(values) for name, values in ratios.items()},
            "edge_ssim": {"mean": round(float(ssim.mean()), 3), "min": round(float(ssim.min()), 3), "share_ok": round(float((ssim >= 0.6).mean()), 3)},
            "share_both_targets": {name: round(float(((values <= 0.5) & (ssim >= 0.6)).mean()), 3) for name, values in ratios.items()},
            "seconds_per_image": round(float(np.mean([row["seconds"] for row in mine])), 2),
            "by_style": {style: {"edge_ssim_mean": round(float(np.mean([r["edge_ssim"] for r in mine if r["style"] == style])), 3),
                                 **{f"{name}_ratio_median": round(float(np.median([r["distance"][name][1] / r["distance"][name][0] for r in mine
                                                                                    if r["style"] == style])), 3) for name in referees}}
                         for style in dict.fromkeys(row["style"] for row in mine)},
        }
    record = {"date": datetime.now(UTC).isoformat(timespec="minutes"), "command": " ".join(sys.argv), "features": network.name,
              "judges": list(referees), "size": size, "steps": steps, "adain_detail": detail, "strength": DEFAULT_STRENGTH, "threads": threads,
              "machine": machine(), "summary": summary, "rows": rows}
    target = RESULTS / f"style-quality-{features.replace(':', '-')}-{methods.replace(',', '+')}{'' if detail else '-nodetail'}.json"
    write_json_atomic(target, record)
    print(json.dumps(summary, indent=2))
    print(f"written to {target}")


@app.command()
def speed(features: str = "random-multiscale", size: int = SIZE, batch: int = 8, repeats: int = 10, threads: int = 2) -> None:
    """AdaIN images per second at size x size: batches of content images, one style image each, encoding included."""
    torch.set_num_threads(threads)
    network = load_features(features)
    decoder = find_decoder(network)
    generator = torch.Generator().manual_seed(0)
    content, style = torch.rand(batch, 3, size, size, generator=generator), torch.rand(1, 3, size, size, generator=generator)
    adain_stylise(network, decoder, content, style)  # warm-up: oneDNN picks its kernels on the first call
    timings, cpu_timings = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        adain_stylise(network, decoder, content, style)
        timings.append(time.perf_counter() - started)
        cpu_timings.append(time.process_time() - cpu_started)
    rates = batch / np.array(timings)
    # On a machine shared with other jobs the wall-clock rate is what this process got; the CPU-time rate
    # (images per second of CPU, all threads together) is what the work costs, whatever the neighbours.
    record = {"date": datetime.now(UTC).isoformat(timespec="minutes"), "command": " ".join(sys.argv), "features": network.name, "size": size,
              "batch": batch, "threads": threads, "machine": machine(), "images_per_second_median": round(float(np.median(rates)), 1),
              "images_per_second_best": round(float(rates.max()), 1), "images_per_second_worst": round(float(rates.min()), 1),
              "images_per_cpu_second_median": round(float(np.median(batch / np.array(cpu_timings))), 1)}
    target = RESULTS / f"style-speed-{threads}threads.json"
    write_json_atomic(target, record)
    print(json.dumps(record, indent=2))


TILE = (200, 150)  # height, width of every picture in a sheet: clothing-small photos are portrait 3:4


def tile(image: np.ndarray) -> np.ndarray:
    """The image's centre cut to the tile's aspect ratio, resized to the tile."""
    height, width = image.shape[:2]
    keep_width = min(width, round(height * TILE[1] / TILE[0]))
    keep_height = min(height, round(width * TILE[0] / TILE[1]))
    top, left = (height - keep_height) // 2, (width - keep_width) // 2
    return resize(image[top : top + keep_height, left : left + keep_width], *TILE)


def save_sheet(rows: list[tuple[str, list[np.ndarray]]], path: Path, columns: int) -> None:
    """A labelled sheet as JPEG (quality 88): photographs, a sixth of the PNG's size."""
    sheet = labelled_rows([(label, np.stack(images)) for label, images in rows], ncols=columns, label_width=170)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="JPEG", quality=88)


@app.command()
def pictures(features: str = "random-multiscale", compare: str | None = None, size: int = SIZE, steps: int = DEFAULT_STEPS, threads: int = 1) -> None:
    """A sheet with rows content | style | gatys | adain (and both methods in the --compare features), one column per
    pair (six held-out photos, each with another of the six styles), and a sheet of AdaIN with and without --keep-background."""
    torch.set_num_threads(threads)
    photos, styles = contents(size), benchmark_styles(size)
    pairs = list(zip(list(photos)[:6], list(styles)))
    networks = [load_features(features)] + ([load_features(compare)] if compare else [])
    rows: list[tuple[str, list[np.ndarray]]] = [("content", []), ("style", [])]
    for network in networks:
        rows += [(f"gatys ({network.name})", []), (f"adain ({network.name})", [])]
    masked: list[tuple[str, list[np.ndarray]]] = [("content", []), ("style", []), ("adain", []), ("adain --keep-background", [])]
    for photo_name, style_name in pairs:
        photo, style = photos[photo_name], styles[style_name]
        results = [stylise(photo, style, method=method, features=network, size=size, steps=steps) for network in networks for method in ("gatys", "adain")]
        for (_, images), image in zip(rows, [photo, style, *results]):
            images.append(tile(image))
        kept = stylise(photo, style, method="adain", features=networks[0], size=size, keep_background=True)
        for (_, images), image in zip(masked, [photo, style, results[1], kept]):
            images.append(tile(image))
    PICTURES.mkdir(parents=True, exist_ok=True)
    name = "style-transfer" + (f"-vs-{compare.replace(':', '-')}" if compare else "")
    save_sheet(rows, PICTURES / f"{name}.jpg", len(pairs))
    save_sheet(masked, PICTURES / "keep-background.jpg", len(pairs))
    print(f"pictures written to {PICTURES}")


if __name__ == "__main__":
    app()
