"""Does the generator copy its training images?

A sample counts as memorised when its nearest train neighbour (in feature space) is closer than
the 1st percentile of the train photos' distances to their nearest *other* train photo: closer than
99% of the catalog's own photos are to each other. A new photo from the same source is, to the
train set, one more such photo, so held-out real photos score about 1%.

Why train photos and not held-out ones set the threshold: a small catalog holds about 130 held-out
photos, whose 1st percentile is their second-smallest distance, so the threshold moved with one or
two photos (on clothing-small the val photos scored 5.3% against the test photos' threshold). The
train photos are eight times as many, and all of a large catalog's are not needed: a random
`THRESHOLD_PHOTOS` of them give a stable percentile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prodgen.metrics.neighbours import nearest, reduce_rows

COPY_PERCENTILE = 1.0
THRESHOLD_PHOTOS = 5000


def copy_threshold(train_features: np.ndarray, percentile: float = COPY_PERCENTILE, photos: int = THRESHOLD_PHOTOS, seed: int = 0) -> float:
    """The `percentile` of train photos' distances to their nearest other train photo, over at most
    `photos` of them drawn at random (each still against every train photo)."""
    if len(train_features) < 2:
        raise ValueError(f"need at least 2 train photos for a copy threshold, got {len(train_features)}")
    rows = np.arange(len(train_features))
    if len(rows) > photos:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=photos, replace=False))
    # Each row is among the points: its smallest distance is to itself, the second to its nearest other photo.
    distances = reduce_rows(train_features[rows], train_features, lambda d: d.topk(2, dim=1, largest=False).values[:, 1])
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
