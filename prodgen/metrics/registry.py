"""Metric registry: name -> function, as in StyleGAN2-ADA's metric_main.

Each metric reads a MetricContext (generated samples and a real reference split, both with
feature-network embeddings and predictions) and returns headline numbers plus details. The
same function computes the floor: it is called again with real images in place of samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from prodgen.errors import ProdgenError
from prodgen.metrics.classification import class_consistency, classification_accuracy_score, histogram_summary
from prodgen.metrics.fid import fid_from_features
from prodgen.metrics.image_statistics import laplacian_swd, spectral_distance
from prodgen.metrics.kid import kernel_distance
from prodgen.metrics.memorisation import copy_threshold, memorisation
from prodgen.metrics.prdc import (
    DENSITY_COVERAGE_K,
    DENSITY_COVERAGE_PAPER,
    PRECISION_RECALL_K,
    PRECISION_RECALL_PAPER,
    density_coverage,
    precision_recall,
)

# Below this many images per category a 128-d covariance is rank-deficient and FID meaningless.
MIN_IMAGES_FOR_CATEGORY_FID = 200


@dataclass
class ImageSet:
    """Images with their feature-network embeddings and predicted categories; labels are the
    conditioning labels of generated samples or the true labels of real images (None if unknown)."""

    images: np.ndarray
    labels: np.ndarray | None
    features: np.ndarray
    predictions: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def select(self, mask: np.ndarray) -> ImageSet:
        return ImageSet(self.images[mask], None if self.labels is None else self.labels[mask], self.features[mask], self.predictions[mask])


@dataclass
class EvalOptions:
    # k of the k-NN balls: each pair's own paper's choice. Floors use the same options, so a floor
    # always has the k of the metric it sits beside.
    precision_recall_k: int = PRECISION_RECALL_K
    density_coverage_k: int = DENSITY_COVERAGE_K
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    cas_epochs: int = 5
    closest_pairs: int = 16
    inception_weights: Path | None = None


@dataclass
class MetricContext:
    samples: ImageSet
    reference: ImageSet
    split: Callable[[str], ImageSet]  # a real catalog split, features cached by the evaluator
    categories: list[str]
    seed: int
    options: EvalOptions


@dataclass
class MetricResult:
    values: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    function: Callable[[MetricContext], MetricResult]
    description: str
    needs_labels: bool
    # "train": the floor scores a real train sample of the same size as the samples; "val": it
    # scores the val split (for memorisation, where train images are copies by definition).
    floor_from: Literal["train", "val"]
    fast: bool  # cheap enough for validation during training


_REGISTRY: dict[str, MetricSpec] = {}


def register_metric(
    name: str, description: str, *, needs_labels: bool = False, floor_from: Literal["train", "val"] = "train", fast: bool = True
) -> Callable[[Callable[[MetricContext], MetricResult]], Callable[[MetricContext], MetricResult]]:
    def decorator(function: Callable[[MetricContext], MetricResult]) -> Callable[[MetricContext], MetricResult]:
        _REGISTRY[name] = MetricSpec(name, function, description, needs_labels, floor_from, fast)
        return function

    return decorator


def list_metrics() -> list[MetricSpec]:
    return list(_REGISTRY.values())


def get_metric(name: str) -> MetricSpec:
    if name not in _REGISTRY:
        raise ProdgenError(f"Unknown metric {name!r}; choose from {', '.join(_REGISTRY)}.")
    return _REGISTRY[name]


@register_metric("fid", "Fréchet distance between Gaussian fits of features (lower is better)")
def _fid(ctx: MetricContext) -> MetricResult:
    return MetricResult({"fid": fid_from_features(ctx.reference.features, ctx.samples.features)})


@register_metric("swd", "Sliced Wasserstein distance on Laplacian-pyramid patches, x1000, mean over levels (Karras et al. 2018; no learned network)")
def _swd(ctx: MetricContext) -> MetricResult:
    result = laplacian_swd(ctx.samples.images, ctx.reference.images, ctx.seed)
    return MetricResult({"swd": result["swd"]}, {"levels": result["levels"]})


@register_metric("spectral", "Mean |log10| difference of azimuthally averaged power spectra (Durall et al. 2020): 0 when they match")
def _spectral(ctx: MetricContext) -> MetricResult:
    result = spectral_distance(ctx.samples.images, ctx.reference.images)
    return MetricResult({"spectral": result.pop("spectral")}, result)


@register_metric("kid", "Kernel distance, unbiased MMD^2 with cubic kernel, mean and std over subsets (lower is better)")
def _kid(ctx: MetricContext) -> MetricResult:
    mean, std = kernel_distance(
        ctx.reference.features, ctx.samples.features, ctx.options.kid_subsets, ctx.options.kid_subset_size, seed=ctx.seed
    )
    return MetricResult({"kid_mean": mean, "kid_std": std})


@register_metric("pr", f"Precision (fidelity) and recall (diversity), {PRECISION_RECALL_PAPER}, k={PRECISION_RECALL_K} by default")
def _precision_recall(ctx: MetricContext) -> MetricResult:
    k = ctx.options.precision_recall_k
    precision, recall = precision_recall(ctx.reference.features, ctx.samples.features, k)
    return MetricResult({"precision": precision, "recall": recall}, {"k": k, "paper": PRECISION_RECALL_PAPER})


@register_metric("dc", f"Density and coverage, {DENSITY_COVERAGE_PAPER}, k={DENSITY_COVERAGE_K} by default")
def _density_coverage(ctx: MetricContext) -> MetricResult:
    k = ctx.options.density_coverage_k
    density, coverage = density_coverage(ctx.reference.features, ctx.samples.features, k)
    return MetricResult({"density": density, "coverage": coverage}, {"k": k, "paper": DENSITY_COVERAGE_PAPER})


@register_metric("class_consistency", "Share of conditional samples the classifier assigns to their label", needs_labels=True)
def _class_consistency(ctx: MetricContext) -> MetricResult:
    assert ctx.samples.labels is not None
    overall, per_category = class_consistency(ctx.samples.predictions, ctx.samples.labels, len(ctx.categories))
    return MetricResult({"class_consistency": overall}, {"per_category": per_category})


@register_metric("histogram", "Predicted-category shares vs the reference: mode coverage and total variation")
def _histogram(ctx: MetricContext) -> MetricResult:
    summary = histogram_summary(ctx.samples.predictions, ctx.reference.predictions, len(ctx.categories))
    values = {key: summary.pop(key) for key in ("modes_covered", "histogram_tv")}
    return MetricResult(values, summary)


@register_metric("per_category", "Count, class consistency and FID per category (by label, else by predicted category)")
def _per_category(ctx: MetricContext) -> MetricResult:
    by_label = ctx.samples.labels is not None
    groups = ctx.samples.labels if by_label else ctx.samples.predictions
    rows = []
    for index, name in enumerate(ctx.categories):
        members = ctx.samples.select(groups == index)
        reference = ctx.reference.select(ctx.reference.labels == index) if ctx.reference.labels is not None else None
        enough = reference is not None and min(len(members), len(reference)) >= MIN_IMAGES_FOR_CATEGORY_FID
        rows.append(
            {
                "category": name,
                "count": len(members),
                "class_consistency": float((members.predictions == index).mean()) if by_label and len(members) else None,
                "fid": fid_from_features(reference.features, members.features) if enough else None,
            }
        )
    return MetricResult({}, {"grouped_by": "label" if by_label else "predicted category", "rows": rows})


@register_metric(
    "memorisation",
    "Share of samples nearer a train image than 99% of train images are to their nearest other one (about 0.01 for new images)",
    floor_from="val",
)
def _memorisation(ctx: MetricContext) -> MetricResult:
    train = ctx.split("train")
    threshold = copy_threshold(train.features)
    result = memorisation(ctx.samples.features, train.features, threshold)
    return MetricResult(
        {"memorisation": result.share, "memorisation_threshold": result.threshold},
        {"closest_pairs": result.closest_pairs(ctx.options.closest_pairs)},
    )


@register_metric(
    "cas", "Classification accuracy score: a classifier trained on the samples, tested on real test images", needs_labels=True, fast=False
)
def _cas(ctx: MetricContext) -> MetricResult:
    assert ctx.samples.labels is not None
    test = ctx.split("test")
    assert test.labels is not None
    accuracy = classification_accuracy_score(
        ctx.samples.images, ctx.samples.labels, test.images, test.labels, len(ctx.categories), epochs=ctx.options.cas_epochs, seed=ctx.seed
    )
    return MetricResult({"cas": accuracy})


@register_metric("inception_fid", "FID in Inception-v3 pool features (needs local weights and torch-fidelity)", fast=False)
def _inception_fid(ctx: MetricContext) -> MetricResult:
    from prodgen.metrics.inception import inception_features

    weights = ctx.options.inception_weights
    return MetricResult(
        {"inception_fid": fid_from_features(inception_features(ctx.reference.images, weights), inception_features(ctx.samples.images, weights))}
    )
