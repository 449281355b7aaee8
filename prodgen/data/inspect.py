"""Summaries of a prepared catalog: counts per split and category, and a contact sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prodgen.data.catalog import SPLITS, Catalog, read_rows
from prodgen.imaging import labelled_rows, save_png


def contact_sheet(catalog: Catalog, path: Path, per_category: int = 10, split: str = "train", seed: int = 0) -> Path:
    """Write a PNG with one row of random `split` samples per category."""
    rng = np.random.default_rng(seed)
    in_split = catalog.splits == SPLITS.index(split)
    rows = []
    for label, category in enumerate(catalog.categories):
        candidates = np.flatnonzero(in_split & (catalog.labels == label))
        chosen = np.sort(rng.choice(candidates, size=min(per_category, len(candidates)), replace=False))
        rows.append((f"{category} ({len(candidates)})", read_rows(catalog.images, chosen)))
    save_png(labelled_rows(rows, ncols=per_category), path)
    return path


def summary_rows(catalog: Catalog) -> list[list[str]]:
    """Table rows: category, one count per split, total; a final TOTAL row."""
    counts = catalog.counts()
    rows = [[c] + [str(counts[c][s]) for s in SPLITS] + [str(sum(counts[c].values()))] for c in catalog.categories]
    totals = [sum(counts[c][s] for c in catalog.categories) for s in SPLITS]
    rows.append(["TOTAL"] + [str(t) for t in totals] + [str(sum(totals))])
    return rows
