"""Score a generator the way a final report does: samples mixing the categories as the catalog does,
the test split, every metric, JSON + HTML report with grids and nearest-neighbour pairs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prodgen.data.catalog import Catalog
from prodgen.errors import ProdgenError
from prodgen.generate.pipeline import ProductGenerator
from prodgen.metrics.evaluate import REPORT_METRICS, Evaluator, catalog_labels, train_counts
from prodgen.metrics.registry import EvalOptions
from prodgen.metrics.report import write_report
from prodgen.models.sampling import sample_images


def catalog_samples(generator: ProductGenerator, catalog: Catalog, count: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """`count` samples; when the model is conditioned on category, categories in the catalog's train
    shares (`catalog_labels`), other conditions drawn at random. Returns (images, category labels or None)."""
    codes = generator.codes_for(count, None, seed)
    labels = None
    if "category" in generator.conditions.names:
        column = generator.conditions.names.index("category")
        if generator.conditions.cardinalities[column] != catalog.num_classes:
            raise ProdgenError(
                f"The model knows {generator.conditions.cardinalities[column]} categories, catalog {catalog.name!r} has {catalog.num_classes}: score it against the catalog it was trained on."
            )
        labels = catalog_labels(count, train_counts(catalog), seed)
        codes[:, column] = torch.from_numpy(labels)
    return sample_images(generator.forward, generator.spec, codes, seed), labels


def report_on_samples(
    catalog: Catalog,
    images: np.ndarray,
    labels: np.ndarray | None,
    split: str = "test",
    metrics: list[str] | tuple[str, ...] = REPORT_METRICS,
    out_dir: Path | None = None,
    seed: int = 0,
    floors: bool = True,
    options: EvalOptions | None = None,
) -> dict[str, Any]:
    """Score samples against a real split and, with `out_dir`, write report.json + report.html."""
    evaluator = Evaluator(catalog, reference_split=split, options=options, seed=seed, show_progress=True)
    started = time.perf_counter()
    samples = evaluator.image_set(images, labels, description="features of samples")
    result = evaluator.score(samples, list(metrics), floors, extraction_seconds=time.perf_counter() - started)
    if out_dir is not None:
        groups = labels if labels is not None else samples.predictions
        result["report_files"] = {k: str(v) for k, v in write_report(result, images, groups, catalog.subset("train")[0], out_dir).items()}
    return result


def evaluate_generator(
    generator: ProductGenerator,
    catalog: Catalog,
    count: int = 10_000,
    split: str = "test",
    out_dir: Path | None = None,
    include_cas: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    images, labels = catalog_samples(generator, catalog, count, seed)
    metrics = [m for m in REPORT_METRICS if include_cas or m != "cas"]
    result = report_on_samples(catalog, images, labels, split, metrics, out_dir, seed)
    result["generator"] = generator.source
    return result
