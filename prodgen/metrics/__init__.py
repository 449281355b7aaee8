"""Offline evaluation of generated product images in a domain feature space.

Typical use from a training loop::

    evaluator = Evaluator(catalog, reference_split="val", seed=0)
    scores = evaluator.evaluate(images_uint8_nhwc, labels)   # FID, KID, precision/recall, density/coverage
    scores["metrics"]["fid"], scores["floors"]["fid"]

Final reports use the test split and REPORT_METRICS (`prodgen eval run`).
"""

from prodgen.metrics.classification import class_consistency, classification_accuracy_score, histogram_summary
from prodgen.metrics.evaluate import REPORT_METRICS, VALIDATION_METRICS, Evaluator, evaluate
from prodgen.metrics.features import (
    FeatureCNN,
    FeatureNetwork,
    fit_feature_network,
    load_feature_network,
    load_feature_network_from,
    save_feature_network,
    train_classifier,
)
from prodgen.metrics.fid import fid_from_features, frechet_distance, gaussian_statistics
from prodgen.metrics.kid import kernel_distance
from prodgen.metrics.memorisation import copy_threshold, memorisation
from prodgen.metrics.prdc import density_coverage, precision_recall
from prodgen.metrics.registry import EvalOptions, ImageSet, MetricContext, MetricResult, get_metric, list_metrics, register_metric
from prodgen.metrics.report import write_report
from prodgen.metrics.samples import SampleFn, load_samples, validate_samples

__all__ = [
    "REPORT_METRICS",
    "VALIDATION_METRICS",
    "EvalOptions",
    "Evaluator",
    "FeatureCNN",
    "FeatureNetwork",
    "ImageSet",
    "MetricContext",
    "MetricResult",
    "SampleFn",
    "class_consistency",
    "classification_accuracy_score",
    "copy_threshold",
    "density_coverage",
    "evaluate",
    "fid_from_features",
    "fit_feature_network",
    "frechet_distance",
    "gaussian_statistics",
    "get_metric",
    "histogram_summary",
    "kernel_distance",
    "list_metrics",
    "load_feature_network",
    "load_feature_network_from",
    "load_samples",
    "memorisation",
    "precision_recall",
    "register_metric",
    "save_feature_network",
    "train_classifier",
    "validate_samples",
    "write_report",
]
