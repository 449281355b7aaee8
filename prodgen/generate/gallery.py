"""A per-category gallery: one labelled row of generated images per category."""

from __future__ import annotations

from pathlib import Path

from prodgen.generate.pipeline import ProductGenerator
from prodgen.imaging import labelled_rows, save_png


def category_gallery(generator: ProductGenerator, path: Path, per_category: int = 10, seed: int = 0) -> Path:
    if "category" not in generator.conditions.names:
        rows = [("samples", generator.sample(per_category * 4, seed=seed))]
        ncols = per_category * 2
    else:
        categories = generator.conditions.values[generator.conditions.names.index("category")]
        rows = [(name, generator.sample(per_category, {"category": name}, seed=seed + i)) for i, name in enumerate(categories)]
        ncols = per_category
    save_png(labelled_rows(rows, ncols=ncols), path)
    return path
