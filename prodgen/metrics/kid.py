"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with the cubic polynomial
kernel, averaged over random subsets. Unlike FID it is unbiased at small sample sizes."""

from __future__ import annotations

import numpy as np

from prodgen.errors import ProdgenError


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    m = len(x)
    k_xx, k_yy, k_xy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def kernel_distance(
    features1: np.ndarray,
    features2: np.ndarray,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean, std) of MMD^2 over `num_subsets` pairs of subsets drawn without replacement."""
    size = min(subset_size, len(features1), len(features2))
    if size < 2:
        raise ProdgenError(f"KID needs at least 2 feature vectors per set, got {len(features1)} and {len(features2)}.")
    rng = np.random.default_rng(seed)
    x_all, y_all = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    estimates = [
        unbiased_mmd2(x_all[rng.choice(len(x_all), size, replace=False)], y_all[rng.choice(len(y_all), size, replace=False)])
        for _ in range(num_subsets)
    ]
    return float(np.mean(estimates)), float(np.std(estimates))
