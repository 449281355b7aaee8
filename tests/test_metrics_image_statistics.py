"""The metrics without a learned network (issue 16): sliced Wasserstein distance on Laplacian-pyramid
patches and the spectral artefact score, on cases whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from prodgen.metrics.image_statistics import laplacian_pyramid, laplacian_swd, spectral_distance


def products(count: int = 60, seed: int = 0, size: int = 64) -> np.ndarray:
    """Smooth coloured blobs on white, each different: a small stand-in for a catalog."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    images = []
    for _ in range(count):
        centre, radius, colour = rng.uniform(0.35, 0.65, 2), rng.uniform(0.15, 0.3), rng.uniform(30, 220, 3)
        inside = ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) < radius**2
        shade = 0.8 + 0.2 * yy[..., None]
        images.append(np.where(inside[..., None], colour * shade, 255.0) + rng.normal(0, 3, (size, size, 3)))
    return np.clip(images, 0, 255).astype(np.uint8)


def checkerboard(images: np.ndarray, amplitude: float = 20) -> np.ndarray:
    """The period-2 pattern that transposed convolutions with uneven overlap paint."""
    pattern = np.where((np.indices(images.shape[1:3]).sum(axis=0) % 2) == 0, amplitude, -amplitude)
    return np.clip(images + pattern[None, ..., None], 0, 255).astype(np.uint8)


def test_the_pyramid_adds_back_up_to_the_image():
    import cv2

    image = products(1)[0].astype(np.float32) / 255
    levels = laplacian_pyramid(image)
    assert [level.shape[0] for level in levels] == [64, 32, 16]
    rebuilt = levels[-1]
    for band in reversed(levels[:-1]):
        rebuilt = cv2.pyrUp(rebuilt, dstsize=band.shape[1::-1]) + band
    assert np.allclose(rebuilt, image, atol=1e-5)


def test_identical_sets_score_zero_and_other_sets_score_more():
    real, other = products(seed=0), products(seed=1)
    assert laplacian_swd(real, real, seed=0)["swd"] == 0
    assert spectral_distance(real, real)["spectral"] == 0 and spectral_distance(real, real)["high_frequency_ratio"] == 1
    floor = laplacian_swd(other, real, seed=0)["swd"]  # another sample of the same distribution
    shifted = np.clip(other.astype(int) + np.array([60, -40, 0]), 0, 255).astype(np.uint8)
    result = laplacian_swd(shifted, real, seed=0)
    assert result["swd"] > 3 * floor
    assert result["levels"]["16px"] > 3 * laplacian_swd(other, real, seed=0)["levels"]["16px"]  # colour lives in the coarsest level


def test_a_checkerboard_shows_in_the_finest_level_and_the_high_frequencies():
    real, other = products(seed=0), products(seed=1)
    clean, patterned = laplacian_swd(other, real, seed=0), laplacian_swd(checkerboard(other), real, seed=0)
    assert patterned["levels"]["64px"] > 3 * clean["levels"]["64px"]
    spectral_clean, spectral_patterned = spectral_distance(other, real), spectral_distance(checkerboard(other), real)
    assert spectral_patterned["spectral"] > 3 * spectral_clean["spectral"]
    assert spectral_patterned["high_frequency_ratio"] > 2 > 0.5 < spectral_clean["high_frequency_ratio"] < 2


def test_the_strongest_peak_names_a_periodic_patterns_frequency():
    real, other = products(seed=0), products(seed=1)
    assert spectral_distance(real, real)["strongest_peak"]["ratio"] == pytest.approx(1.0)
    clean = spectral_distance(other, real)["strongest_peak"]["ratio"]
    peak = spectral_distance(checkerboard(other), real)["strongest_peak"]
    assert peak["frequency"] == [32, 32] and peak["ratio"] > 10 * clean  # (Nyquist, Nyquist): a 2x layer's checkerboard
    columns = np.where(np.arange(64) % 2 == 0, 20, -20)[None, None, :, None]  # light and dark columns in turn
    stripes = spectral_distance(np.clip(other + columns, 0, 255).astype(np.uint8), real)["strongest_peak"]
    assert stripes["frequency"] == [0, 32] and stripes["ratio"] > 10 * clean
    rows, cols = np.cos(2 * np.pi * np.indices((64, 64)) / 8)  # 8 cycles per image each way: soft dots 8 px apart
    dots = (20 * rows * cols)[None, ..., None]
    assert spectral_distance(np.clip(other + dots, 0, 255).astype(np.uint8), real)["strongest_peak"]["frequency"] in ([8, 8], [8, -8])


def test_blur_lowers_the_high_frequency_ratio():
    import cv2

    real = products(seed=0)
    blurred = np.stack([cv2.GaussianBlur(image, (0, 0), 1.5) for image in products(seed=1)])
    assert spectral_distance(blurred, real)["high_frequency_ratio"] < 0.5
