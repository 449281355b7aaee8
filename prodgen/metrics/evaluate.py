"""The single entry point for scoring generated images: `Evaluator` (keep one per training run so
real-split features are extracted once) and the one-shot `evaluate`."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import numpy as np

from prodgen.data.catalog import Catalog
from prodgen.errors import ProdgenError
from prodgen.fileio import atomic_path
from prodgen.metrics.features import FeatureNetwork, features_home, load_feature_network
from prodgen.metrics.prdc import metric_definitions
from prodgen.metrics.registry import EvalOptions, ImageSet, MetricContext, MetricResult, get_metric
from prodgen.metrics.samples import SampleFn, validate_samples

# Cheap enough to run every few thousand training steps.
VALIDATION_METRICS = ("fid", "kid", "pr", "dc")
REPORT_METRICS = ("fid", "kid", "pr", "dc", "swd", "spectral", "class_consistency", "histogram", "per_category", "memorisation", "cas")
REFERENCE_SPLITS = ("val", "test")


def catalog_labels(count: int, train_counts: np.ndarray | list[int], seed: int) -> np.ndarray:
    """`count` category labels in the shares of the train split's `train_counts` (largest remainders),
    shuffled by `seed`. FID, SWD, recall and the rest compare the samples with the real photos as a
    whole, so the samples must mix the categories as the catalog does: drawn in equal shares from a
    catalog with half as many hats, the hats alone would count against the model. A balanced catalog
    gets equal shares, within one, in the same order as always (categories taken in turn)."""
    counts = np.asarray(train_counts, dtype=np.int64)
    if count < 0 or len(counts) == 0 or counts.min() < 0 or counts.sum() == 0:
        raise ProdgenError(f"Cannot draw {count} labels from train counts {counts.tolist()}.")
    quotas = count * counts / counts.sum()
    shares = np.floor(quotas).astype(np.int64)
    remainders = np.argsort(-(quotas - shares), kind="stable")[: count - shares.sum()]
    shares[remainders] += 1
    classes = np.repeat(np.arange(len(counts)), shares)
    turns = np.concatenate([np.arange(n) for n in shares])
    in_turn = classes[np.lexsort((classes, turns))]
    return np.random.default_rng(seed).permutation(in_turn).astype(np.int64)


def train_counts(catalog: Catalog) -> np.ndarray:
    return np.bincount(catalog.labels[catalog.split_indices("train")], minlength=catalog.num_classes)


class Evaluator:
    """Scores samples against one real reference split of a catalog, with floors from real data."""

    def __init__(
        self,
        catalog: Catalog,
        reference_split: str = "val",
        feature_net: FeatureNetwork | None = None,
        options: EvalOptions | None = None,
        seed: int = 0,
        show_progress: bool = False,
    ) -> None:
        if reference_split not in REFERENCE_SPLITS:
            raise ProdgenError(
                f"Reference split must be one of {', '.join(REFERENCE_SPLITS)} (train images are what a generator "
                f"learns from), got {reference_split!r}."
            )
        self.catalog = catalog
        self.reference_split = reference_split
        self.feature_net = feature_net or load_feature_network(catalog.name)
        self.feature_net.check_compatible(catalog.categories, catalog.channels, catalog.name)
        self.options = options or EvalOptions()
        self.seed = seed
        self.show_progress = show_progress
        self._splits: dict[str, ImageSet] = {}
        self._floors: dict[tuple[str, int], MetricResult] = {}

    def image_set(self, images: np.ndarray, labels: np.ndarray | None, description: str | None = None) -> ImageSet:
        batch = self.feature_net.extract(images, description=description if self.show_progress else None)
        return ImageSet(images, labels, batch.features, batch.predictions)

    def split(self, name: str) -> ImageSet:
        """A real split with its features; features are cached on disk per catalog content and network."""
        if name not in self._splits:
            images, labels = self.catalog.subset(name)
            if len(images) == 0:
                raise ProdgenError(f"Catalog {self.catalog.name!r} has no {name} images to evaluate against.")
            self._splits[name] = self._cached_split(name, images, labels)
        return self._splits[name]

    def _cached_split(self, name: str, images: np.ndarray, labels: np.ndarray) -> ImageSet:
        path = features_home() / self.catalog.name / "cache" / f"{self.catalog.digest[:16]}-{self.feature_net.fingerprint[:16]}-{name}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as cached:
                if len(cached["features"]) == len(images):
                    return ImageSet(images, labels, cached["features"], cached["predictions"])
        image_set = self.image_set(images, labels, description=f"features of {self.catalog.name} {name}")
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, features=image_set.features, predictions=image_set.predictions)
        return image_set

    def real_train_sample(self, count: int) -> ImageSet:
        """`count` random real train images (all of them if fewer), the same ones for a given seed."""
        train = self.split("train")
        chosen = np.sort(np.random.default_rng(self.seed).choice(len(train), min(count, len(train)), replace=False))
        return train.select(chosen)

    def _context(self, samples: ImageSet) -> MetricContext:
        return MetricContext(samples, self.split(self.reference_split), self.split, list(self.catalog.categories), self.seed, self.options)

    def _floor(self, name: str, count: int) -> MetricResult:
        spec = get_metric(name)
        key = (name, count if spec.floor_from == "train" else 0)
        if key not in self._floors:
            real = self.real_train_sample(count) if spec.floor_from == "train" else self.split(spec.floor_from)
            self._floors[key] = spec.function(self._context(real))
        return self._floors[key]

    def _floor_source(self, name: str, count: int) -> str:
        floor_from = get_metric(name).floor_from
        return f"{min(count, len(self.split('train')))} random real train images" if floor_from == "train" else f"the real {floor_from} split"

    def evaluate(
        self,
        images: np.ndarray,
        labels: np.ndarray | None = None,
        metrics: tuple[str, ...] | list[str] = VALIDATION_METRICS,
        floors: bool = True,
    ) -> dict[str, Any]:
        """Score uint8 (N, H, W, C) samples (with conditioning labels, if any) and return a
        JSON-ready dict: headline `metrics`, real-vs-real `floors`, per-metric `details`,
        `skipped` metrics with the reason, `seconds` per metric, the settings used, how many
        samples and real reference images were scored (`num_samples`, `num_reference`) and
        `metric_definitions`: the paper and k behind precision/recall and density/coverage."""
        images, labels = validate_samples(
            images, labels, (self.catalog.height, self.catalog.width, self.catalog.channels), self.catalog.num_classes
        )
        started = time.perf_counter()
        samples = self.image_set(images, labels, description="features of samples")
        return self.score(samples, metrics, floors, extraction_seconds=time.perf_counter() - started)

    def score(
        self,
        samples: ImageSet,
        metrics: tuple[str, ...] | list[str] = VALIDATION_METRICS,
        floors: bool = True,
        extraction_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Like `evaluate`, for samples whose features are already extracted (by `image_set`)."""
        specs = [get_metric(name) for name in metrics]
        labels = samples.labels
        seconds = {} if extraction_seconds is None else {"sample_features": extraction_seconds}
        result: dict[str, Any] = {"metrics": {}, "floors": {}, "details": {}, "floor_details": {}, "skipped": {}}
        for spec in specs:
            if spec.needs_labels and labels is None:
                result["skipped"][spec.name] = "needs labelled (class-conditional) samples"
                continue
            started = time.perf_counter()
            scored = spec.function(self._context(samples))
            result["metrics"].update(scored.values)
            result["details"][spec.name] = scored.details
            if floors:
                floor = self._floor(spec.name, len(samples))
                result["floors"].update(floor.values)
                result["floor_details"][spec.name] = floor.details
            seconds[spec.name] = time.perf_counter() - started
        net = self.feature_net.config
        definitions = metric_definitions(self.options.precision_recall_k, self.options.density_coverage_k)
        result.update(
            catalog=self.catalog.name,
            categories=list(self.catalog.categories),
            reference_split=self.reference_split,
            num_samples=len(samples),
            num_reference=len(self.split(self.reference_split)),
            conditional=labels is not None,
            seed=self.seed,
            metric_definitions={key: text for key, text in definitions.items() if key in result["metrics"]},
            floor_source={name: self._floor_source(name, len(samples)) for name in result["details"]} if floors else {},
            feature_network={
                "fingerprint": self.feature_net.fingerprint,
                "architecture": net["architecture"],
                "test_accuracy": net.get("test_accuracy"),
                # False warns that the catalog changed since the network was trained, so its features may not fit.
                "trained_on_this_catalog": net.get("catalog_images_sha256") == self.catalog.digest,
            },
            options={**asdict(self.options), "inception_weights": self.options.inception_weights and str(self.options.inception_weights)},
            seconds={k: round(v, 3) for k, v in seconds.items()},
        )
        return result

    def evaluate_sampler(
        self,
        sample_fn: SampleFn,
        count: int,
        conditional: bool = True,
        metrics: tuple[str, ...] | list[str] = VALIDATION_METRICS,
        floors: bool = True,
    ) -> dict[str, Any]:
        """Draw `count` samples from a generator (when conditional, categories in the train split's shares) and score them."""
        labels = None
        if conditional:
            labels = catalog_labels(count, train_counts(self.catalog), self.seed)
        return self.evaluate(sample_fn(count, labels, self.seed), labels, metrics, floors)


def evaluate(
    images: np.ndarray,
    labels: np.ndarray | None,
    catalog: Catalog,
    reference_split: str = "val",
    metrics: tuple[str, ...] | list[str] = VALIDATION_METRICS,
    feature_net: FeatureNetwork | None = None,
    seed: int = 0,
    floors: bool = True,
    options: EvalOptions | None = None,
) -> dict[str, Any]:
    """One-shot evaluation; a training loop should keep an `Evaluator` instead."""
    return Evaluator(catalog, reference_split, feature_net, options, seed).evaluate(images, labels, metrics, floors)
