"""Benchmark: pix2pix runs scored once on the test split of their catalog (each test product's view
translated back and compared with the product), and pictures of the translations side by side.

    .venv/bin/python benchmarks/bench_translate.py score RUN_DIR [RUN_DIR ...] [--threads 1]
    .venv/bin/python benchmarks/bench_translate.py pictures RUN_DIR [RUN_DIR ...] --out docs/images/pix2pix/edges-64.png

Scores: L1 (mean absolute error on [0, 1]) and SSIM against the real products; FID, KID and class
consistency of the translations against the real test split in the catalog's feature space, and the
Laplacian SWD and spectral score, which need no learned network; each with its real-vs-real floor (a
real train sample of the same size against the test split). Results go to
benchmarks/results/translate-<run>.json; benchmarks/RESULTS.md records them by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import typer
import yaml

from prodgen.data import load_catalog
from prodgen.data.catalog import Catalog, read_rows
from prodgen.data.views import RANDOM_DRAWS
from prodgen.edit.translate import Translator
from prodgen.fileio import write_json_atomic
from prodgen.imaging import labelled_rows, save_png, to_rgb
from prodgen.metrics.evaluate import Evaluator
from prodgen.metrics.reconstruction import ssim
from prodgen.train import checkpoint as ckpt

RESULTS = Path(__file__).resolve().parent / "results"
TEST_VIEW_SEED = 4321  # the holes of random views on test products (fixed, so every model sees the same inputs)
app = typer.Typer(no_args_is_help=True)


def test_pairs(translator: Translator, split: str) -> tuple[Catalog, np.ndarray, np.ndarray, np.ndarray]:
    """The model's catalog, and the products of one of its splits, their views and categories."""
    catalog = load_catalog(translator.spec["catalog"])
    rows = catalog.split_indices(split)
    products = read_rows(catalog.images, rows)
    uniforms = np.random.default_rng(TEST_VIEW_SEED).random((len(products), RANDOM_DRAWS))
    views = translator.view.make(products, uniforms if translator.view.random else None)
    return catalog, products, views, catalog.labels[rows]


@app.command()
def score(run_dirs: list[Path], split: str = "test", threads: int = 1) -> None:
    torch.set_num_threads(threads)
    for run_dir in run_dirs:
        translator = Translator.load(run_dir)
        catalog, products, views, labels = test_pairs(translator, split)
        translated = translator.translate(views)
        result = Evaluator(catalog, reference_split=split).evaluate(translated, labels, metrics=["fid", "kid", "swd", "spectral", "class_consistency"])
        summary = {
            "run": str(run_dir), "checkpoint": translator.source, "split": split, "pairs": len(products),
            "l1": float(np.abs(translated.astype(np.float32) - products).mean() / 255), "ssim": float(ssim(products, translated).mean()),
            "metrics": result["metrics"], "floors": result["floors"], "feature_network": result["feature_network"],
            "best": ckpt.read_state(Path(translator.source)).get("best"),
        }
        write_json_atomic(RESULTS / f"translate-{run_dir.resolve().parent.name}-{run_dir.name}.json", summary)
        metrics = {k: round(v, 4) for k, v in summary["metrics"].items() if isinstance(v, float)}
        print(f"{run_dir}: {split} pairs {len(products)}, L1 {summary['l1']:.4f}, SSIM {summary['ssim']:.3f}, {metrics}, floors "
              f"{ {k: round(v, 4) for k, v in summary['floors'].items() if isinstance(v, float)} }")


def run_label(run_dir: Path) -> str:
    """The preset's name, and its loss weights: runs of one preset differ by them."""
    loss = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))["loss"]
    return f"{run_dir.name.split('-', 1)[1]}\nL1 {loss['l1_weight']:g}, adv. {loss['adversarial_weight']:g}"


@app.command()
def pictures(run_dirs: list[Path], out: Path = typer.Option(...), split: str = "test", count: int = 10, seed: int = 0) -> None:
    """Rows: the model input, each run's translation, the real product; `count` random products of the split."""
    translators = [Translator.load(run_dir) for run_dir in run_dirs]
    _, products, views, _ = test_pairs(translators[0], split)
    chosen = np.sort(np.random.default_rng(seed).choice(len(products), size=min(count, len(products)), replace=False))
    shown = views[chosen][..., :3] if views.shape[-1] >= 3 else views[chosen]
    rows = [("input", to_rgb(shown))]
    rows += [(run_label(run_dir), to_rgb(translator.translate(views[chosen]))) for run_dir, translator in zip(run_dirs, translators)]
    rows.append(("real product", to_rgb(products[chosen])))
    save_png(labelled_rows(rows, ncols=len(chosen), label_width=180), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    app()
