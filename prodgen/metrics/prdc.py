"""Manifold metrics from k-nearest-neighbour balls around real and generated features.

Precision and recall: Kynkäänniemi et al. 2019, "Improved precision and recall metric for
assessing generative models". Density and coverage: Naeem et al. 2020, "Reliable fidelity and
diversity metrics for generative models". Each pair defaults to its own paper's k:
precision/recall k = 3 (Kynkäänniemi et al. use k = 3), density/coverage k = 5 (Naeem et al.
recommend k = 5). `metric_definitions` names each metric's paper and k for reports.
"""

from __future__ import annotations

import numpy as np
import torch

from prodgen.errors import ProdgenError
from prodgen.metrics.neighbours import kth_neighbour_radii, reduce_rows

# k of the k-NN balls, as in each pair's paper.
PRECISION_RECALL_K = 3  # Kynkäänniemi et al. 2019
DENSITY_COVERAGE_K = 5  # Naeem et al. 2020

PRECISION_RECALL_PAPER = "Kynkäänniemi et al. 2019"
DENSITY_COVERAGE_PAPER = "Naeem et al. 2020"


def metric_definitions(precision_recall_k: int = PRECISION_RECALL_K, density_coverage_k: int = DENSITY_COVERAGE_K) -> dict[str, str]:
    """Each k-NN metric's paper and the k it was computed with, e.g. {"precision": "Kynkäänniemi et al. 2019, k=3"}."""
    pr = f"{PRECISION_RECALL_PAPER}, k={precision_recall_k}"
    dc = f"{DENSITY_COVERAGE_PAPER}, k={density_coverage_k}"
    return {"precision": pr, "recall": pr, "density": dc, "coverage": dc}


def _check_sizes(real: np.ndarray, fake: np.ndarray, k: int) -> None:
    if len(real) <= k or len(fake) <= k:
        raise ProdgenError(f"k-NN metrics with k={k} need more than {k} real and generated samples, got {len(real)} and {len(fake)}.")


def _share_inside_any_ball(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> float:
    radii_row = torch.from_numpy(np.asarray(radii, np.float32))[None, :]
    inside = reduce_rows(queries, centres, lambda d: (d <= radii_row).any(dim=1))
    return float(inside.mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = PRECISION_RECALL_K) -> tuple[float, float]:
    """Precision: share of generated samples inside the real manifold (union of real k-NN balls);
    recall: share of real samples inside the generated manifold."""
    _check_sizes(real, fake, k)
    precision = _share_inside_any_ball(fake, real, kth_neighbour_radii(real, k))
    recall = _share_inside_any_ball(real, fake, kth_neighbour_radii(fake, k))
    return precision, recall


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = DENSITY_COVERAGE_K) -> tuple[float, float]:
    """Density: how many real k-NN balls contain each generated sample, divided by k (about 1 for
    matching distributions, unbounded above). Coverage: share of real samples whose ball holds
    at least one generated sample; robust to outliers, unlike recall."""
    _check_sizes(real, fake, k)
    real_radii = torch.from_numpy(np.asarray(kth_neighbour_radii(real, k), np.float32))
    balls_per_fake = reduce_rows(fake, real, lambda d: (d <= real_radii[None, :]).sum(dim=1))
    nearest_fake = reduce_rows(real, fake, lambda d: d.min(dim=1).values)
    density = float(balls_per_fake.sum() / (k * len(fake)))
    coverage = float((nearest_fake < real_radii.numpy()).mean())
    return density, coverage
