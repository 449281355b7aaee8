"""Exact Euclidean nearest-neighbour queries in row chunks, so a 10k x 54k distance matrix never sits in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

# About 100 MB of float32 distances per chunk.
_MAX_CHUNK_ELEMENTS = 25_000_000


def distance_chunks(queries: np.ndarray, points: np.ndarray) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yield (row slice, distances from those queries to every point)."""
    q, p = torch.from_numpy(np.asarray(queries, np.float32)), torch.from_numpy(np.asarray(points, np.float32))
    rows = max(1, _MAX_CHUNK_ELEMENTS // max(1, len(p)))
    for start in range(0, len(q), rows):
        chunk = slice(start, min(start + rows, len(q)))
        # The matrix-multiply form is fast but can go slightly negative for identical points.
        yield chunk, torch.cdist(q[chunk], p).clamp_min_(0.0)


def reduce_rows(queries: np.ndarray, points: np.ndarray, reduce: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
    """Apply `reduce` (distances chunk -> one value or row per query) chunk by chunk and concatenate."""
    parts = [reduce(distances).numpy() for _, distances in distance_chunks(queries, points)]
    return np.concatenate(parts) if parts else np.zeros(0)


def nearest(queries: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance, index) of each query's nearest point."""
    distances, indices = [], []
    for _, chunk in distance_chunks(queries, points):
        value, index = chunk.min(dim=1)
        distances.append(value.numpy())
        indices.append(index.numpy())
    return np.concatenate(distances), np.concatenate(indices)


def kth_neighbour_radii(points: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest other point (the point itself is excluded)."""
    if len(points) <= k:
        raise ValueError(f"need more than k={k} points for k-NN radii, got {len(points)}")
    return reduce_rows(points, points, lambda d: d.topk(k + 1, dim=1, largest=False).values[:, k])
