"""Score a generator the way a final report does: balanced samples, the test split, every metric,
JSON + HTML report with grids and nearest-neighbour pairs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prodgen.data.catalog import Catalog
from prodgen.generate.pipeline import ProductGenerator
from prodgen.metrics.evaluate import REPORT_METRICS, Evaluator, balanced_labels
from prodgen.metrics.registry import EvalOptions
from prodgen.metrics.report import write_report
from prodgen.models.sampling import sample_images


def balanced_samples(generator: ProductGenerator, count: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """`count` samples, categories in equal shares when the model is conditioned on category
    (other conditions drawn at random); returns (images, category labels or None)."""
    codes = generator.codes_for(count, None, seed)
    labels = None
    if "category" in generator.conditions.names:
        column = generator.conditions.names.index("category")
        categories = generator.conditions.cardinalities[column]
        labels = balanced_labels(count, categories, seed)
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
    images, labels = balanced_samples(generator, count, seed)
    metrics = [m for m in REPORT_METRICS if include_cas or m != "cas"]
    result = report_on_samples(catalog, images, labels, split, metrics, out_dir, seed)
    result["generator"] = generator.source
    return result
