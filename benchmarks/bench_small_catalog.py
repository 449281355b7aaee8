"""Benchmark (issue 16): GANs for small colour catalogs, trained for the same wall-clock time with
`prodgen train --set train.max_minutes=...`, then judged by the measures that need no learned
network (Laplacian SWD, spectral artefact score) beside the catalog feature network's.

    .venv/bin/python benchmarks/bench_small_catalog.py screen RUN_DIR [RUN_DIR ...]          # val split: choose
    .venv/bin/python benchmarks/bench_small_catalog.py pictures RUN_DIR docs/images/small-catalog/NAME
    .venv/bin/python benchmarks/bench_small_catalog.py upsamplers          # G's step cost per upsampling
    .venv/bin/python benchmarks/bench_small_catalog.py heldout-copies clothing-white val docs/images/small-catalog/val-photos-under-copy-threshold.png

Test scores come from `bench_train.py score RUN_DIR` (the test split, once per reported model).
`screen` writes benchmarks/results/screen-RUN.json; `pictures` writes, for one run, a sheet with a
row per category (real train photos left, generated images right, same size) and the generated
images beside their nearest train photos in the catalog's feature space.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import typer

from prodgen.data import load_catalog
from prodgen.fileio import write_json_atomic
from prodgen.generate import ProductGenerator
from prodgen.generate.evaluation import catalog_samples, report_on_samples
from prodgen.imaging import labelled_rows, make_grid, save_png, upscale_nearest
from prodgen.metrics.features import load_feature_network
from prodgen.metrics.memorisation import copy_threshold, memorisation
from prodgen.metrics.neighbours import nearest
from prodgen.models.dcgan import DCGANGenerator
from prodgen.models.layers import UPSAMPLERS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import RESULTS, TAG_OPTION, run_and_checkpoint, run_key  # noqa: E402

SCREEN_METRICS = ["fid", "swd", "spectral", "pr", "class_consistency", "memorisation"]
app = typer.Typer(no_args_is_help=True)


HEADLINE = ("fid", "swd", "spectral", "class_consistency", "recall", "memorisation")


def spectral_bands(details: dict, bands: int = 3) -> dict[str, float]:
    """The spectral gap by radius band, signed: the mean log10 of generated over real power across each
    third of the radii (below 0: too little power there). On 64-px images the top band is radii
    31-45, mostly the corners beyond the axes' Nyquist, where a nearest resize draws almost nothing."""
    gap = np.subtract(details["log10_spectrum_samples"], details["log10_spectrum_reference"])  # radius 1 onwards
    edges = np.linspace(0, len(gap), bands + 1).round().astype(int)
    return {f"{start + 1}-{stop}": round(float(gap[start:stop].mean()), 3) for start, stop in zip(edges, edges[1:])}


def colour_variety(images: np.ndarray, labels: np.ndarray | None) -> dict[str, float]:
    """How varied the colours are within a category, averaged over categories: the spread (standard
    deviation across a category's images) of each image's mean saturation, and the RMS distance of
    each image's mean RGB from its category's. The coarsest SWD level sees these; a generator that
    draws each category in a few colours has them lower than the photos. No labels: one category."""
    labels = np.zeros(len(images), dtype=int) if labels is None else labels
    rgb = images.astype(np.float64) / 255  # (N, H, W, 3)
    brightest = rgb.max(axis=3)
    saturation = np.where(brightest > 0, (brightest - rgb.min(axis=3)) / np.maximum(brightest, 1e-9), 0.0).mean(axis=(1, 2))
    mean_rgb = rgb.mean(axis=(1, 2))
    categories = [labels == category for category in np.unique(labels) if (labels == category).sum() > 1]
    return {
        "saturation_spread": round(float(np.mean([saturation[members].std() for members in categories])), 4),
        "colour_spread": round(float(np.mean([np.sqrt(((mean_rgb[members] - mean_rgb[members].mean(axis=0)) ** 2).sum(axis=1).mean()) for members in categories])), 4),
    }


def _headline(result: dict) -> dict:
    """The figures the issue's targets name, each with its real-vs-real floor."""
    metrics, floors = result["metrics"], result["floors"]
    return {**{key: metrics[key] for key in HEADLINE}, **{f"{key}_floor": floors.get(key) for key in HEADLINE}}


@app.command()
def screen(run_dirs: list[Path], count: int = 1000, threads: int = 2, tag: str = TAG_OPTION,
           seed: int = typer.Option(0, help="the samples' seed; another one measures how much the sampling alone moves the scores")) -> None:
    """Each run's best checkpoint against the VAL split: the numbers a preset is chosen by. A
    checkpoint folder (RUN/ckpt-0006045) is screened instead of the run's best, e.g. its last one."""
    torch.set_num_threads(threads)
    for given in run_dirs:
        run_dir, _ = run_and_checkpoint(given)
        generator = ProductGenerator.load(given)
        catalog = load_catalog(generator.spec["catalog"])
        images, labels = catalog_samples(generator, catalog, count, seed=seed)
        result = report_on_samples(catalog, images, labels, "val", SCREEN_METRICS)
        history = json.loads((run_dir / "history.json").read_text())
        summary = {"run": str(run_dir), "checkpoint": generator.source, "steps": history[-1]["step"], "seconds": history[-1]["seconds"],
                   "samples": count, "sample_seed": seed, "split": "val", **_headline(result), "swd_levels": result["details"]["swd"]["levels"],
                   "high_frequency_ratio": result["details"]["spectral"]["high_frequency_ratio"], "strongest_peak": result["details"]["spectral"]["strongest_peak"],
                   "spectral_bands": spectral_bands(result["details"]["spectral"]),
                   "colour_variety": colour_variety(images, labels), "colour_variety_val_photos": colour_variety(*catalog.subset("val"))}
        suffix = "-".join(part for part in (f"seed{seed}" if seed else "", tag) if part)
        write_json_atomic(RESULTS / f"screen-{run_key(given, suffix)}.json", summary)
        print(json.dumps(summary))


@app.command()
def pictures(run_dir: Path, out_dir: Path, per_category: int = 8, neighbours: int = 12, seed: int = 0, threads: int = 2) -> None:
    """Real beside generated, one row per category; and generated images over their nearest train photos."""
    torch.set_num_threads(threads)
    generator = ProductGenerator.load(run_dir)
    catalog = load_catalog(generator.spec["catalog"])
    train_images, train_labels = catalog.subset("train")
    rng = np.random.default_rng(seed)
    categories = generator.conditions.values[generator.conditions.names.index("category")]
    rows = []
    for index, name in enumerate(categories):
        real = train_images[rng.choice(np.flatnonzero(train_labels == index), per_category, replace=False)]
        generated = generator.sample(per_category, {"category": name}, seed=seed + index)
        rows.append((f"{name}: real | generated", np.concatenate([real, generated])))
    out_dir.mkdir(parents=True, exist_ok=True)
    labelled_rows(rows, ncols=2 * per_category, label_width=150).save(out_dir / "real-vs-generated.png")

    # nearest neighbours of randomly drawn samples (not the closest pairs, which the report shows): what a typical image copies
    samples, _ = catalog_samples(generator, catalog, neighbours, seed)
    network = load_feature_network(catalog.name)
    _, closest = nearest(network.extract(samples).features, network.extract(train_images).features)
    tiles = upscale_nearest(np.concatenate([samples, train_images[closest]]), 96)
    save_png(make_grid(tiles, ncols=neighbours), out_dir / "nearest-train-neighbours.png")
    print(f"pictures: {out_dir}")


@app.command("heldout-copies")
def heldout_copies(catalog_name: str, split: str, out: Path, threads: int = 2) -> None:
    """The real held-out photos that memorisation's threshold counts as copies (its floor), above
    their nearest train photos: what "closer than 99 % of train photos are to each other" looks like."""
    torch.set_num_threads(threads)
    catalog, network = load_catalog(catalog_name), load_feature_network(catalog_name)
    (train_images, _), (heldout, _) = catalog.subset("train"), catalog.subset(split)
    train_features = network.extract(train_images).features
    copies = memorisation(network.extract(heldout).features, train_features, copy_threshold(train_features))
    under = np.flatnonzero(copies.nearest_distances < copies.threshold)
    print(json.dumps({"threshold": copies.threshold, "photos": len(heldout), "under": len(under), "distances": copies.nearest_distances[under].round(3).tolist()}))
    if len(under):
        tiles = upscale_nearest(np.concatenate([heldout[under], train_images[copies.nearest_train_indices[under]]]), 96)
        save_png(make_grid(tiles, ncols=len(under)), out)


@app.command()
def upsamplers(batch: int = 32, repeats: int = 20, threads: int = 1) -> None:
    """Forward + backward time of catalog-64's generator (64x64, g_width 32, 10 categories) per `model.upsample`,
    each kind for every layer, then resize-convolutions for the top layers only."""
    torch.set_num_threads(threads)
    z, conditions = torch.randn(batch, 128), torch.randint(0, 10, (batch, 1))
    top_layers_resized = [["transposed"] * 3 + ["nearest"], ["transposed"] * 2 + ["nearest"] * 2]
    for kind in [*UPSAMPLERS, *top_layers_resized]:
        torch.manual_seed(0)
        generator = DCGANGenerator(z_dim=128, channels=3, height=64, width=64, cardinalities=(10,), width_mult=32, upsample=kind)
        for _ in range(3):  # warm-up: allocator and kernel choice
            generator(z, conditions).square().mean().backward()
        started = time.perf_counter()
        for _ in range(repeats):
            generator(z, conditions).square().mean().backward()
        print(json.dumps({"upsample": kind, "batch": batch, "threads": threads, "ms_forward_backward": round((time.perf_counter() - started) / repeats * 1000, 1)}))


if __name__ == "__main__":
    app()
