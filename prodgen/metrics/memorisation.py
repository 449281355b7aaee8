"""Does the generator copy its training images?

A sample counts as memorised when its nearest train neighbour (in feature space) is closer than
the 1st percentile of the nearest-train distances of real held-out test images: closer than
almost any genuinely new image ever gets. Held-out real images therefore score about 1%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prodgen.metrics.neighbours import nearest

COPY_PERCENTILE = 1.0


def copy_threshold(heldout_features: np.ndarray, train_features: np.ndarray, percentile: float = COPY_PERCENTILE) -> float:
    distances, _ = nearest(heldout_features, train_features)
    return float(np.percentile(distances, percentile))


@dataclass
class Memorisation:
    share: float
    threshold: float
    nearest_distances: np.ndarray  # per sample
    nearest_train_indices: np.ndarray  # per sample, index into the train split

    def closest_pairs(self, count: int = 16) -> list[dict[str, float | int]]:
        order = np.argsort(self.nearest_distances, kind="stable")[:count]
        return [
            {"sample": int(i), "train": int(self.nearest_train_indices[i]), "distance": float(self.nearest_distances[i])}
            for i in order
        ]


def memorisation(sample_features: np.ndarray, train_features: np.ndarray, threshold: float) -> Memorisation:
    distances, indices = nearest(sample_features, train_features)
    return Memorisation(float((distances < threshold).mean()), threshold, distances, indices)
