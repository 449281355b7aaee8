"""What the feature network's classifier says about generated samples: are conditional samples of
the asked category (class consistency), are all categories produced (histogram, mode coverage),
and are the samples good enough to train a classifier on (CAS, Ravuri & Vinyals 2019)."""

from __future__ import annotations

import numpy as np

from prodgen.errors import ProdgenError
from prodgen.metrics.features import classifier_accuracy, train_classifier


def class_consistency(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[float, list[float | None]]:
    """Overall share of samples classified as their conditioning label, and the share per
    category (None for a category with no samples)."""
    hits = predictions == labels
    per_category = [float(hits[labels == c].mean()) if (labels == c).any() else None for c in range(num_classes)]
    return float(hits.mean()), per_category


def category_shares(predictions: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(predictions, minlength=num_classes) / max(1, len(predictions))


def histogram_summary(sample_predictions: np.ndarray, reference_predictions: np.ndarray, num_classes: int) -> dict[str, object]:
    """Predicted-category shares of the samples against those of the real reference split.
    A category counts as covered when it gets at least half its reference share, so a generator
    that collapses onto a few categories scores low even if others appear a handful of times."""
    sample_shares = category_shares(sample_predictions, num_classes)
    reference_shares = category_shares(reference_predictions, num_classes)
    present = reference_shares > 0
    covered = int((sample_shares[present] >= 0.5 * reference_shares[present]).sum())
    return {
        "modes_covered": covered / max(1, int(present.sum())),
        "histogram_tv": float(0.5 * np.abs(sample_shares - reference_shares).sum()),
        "sample_shares": sample_shares.round(5).tolist(),
        "reference_shares": reference_shares.round(5).tolist(),
    }


def classification_accuracy_score(
    images: np.ndarray,
    labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    num_classes: int,
    *,
    epochs: int = 5,
    seed: int = 0,
    show_progress: bool = False,
) -> float:
    """Train a fresh classifier on labelled samples for a fixed number of epochs (no real
    validation data may steer it) and return its accuracy on the real test split."""
    if len(np.unique(labels)) < 2:
        raise ProdgenError("CAS needs labelled samples of at least two categories.")
    trained = train_classifier(
        images, labels, num_classes, epochs=epochs, seed=seed, description="CAS classifier", show_progress=show_progress
    )
    return classifier_accuracy(trained.model, test_images, test_labels, trained.input_size)
