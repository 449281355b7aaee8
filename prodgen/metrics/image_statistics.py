"""Metrics that need no learned network, so they cannot inherit a weak classifier's blind spots.

Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018, "Progressive growing of
GANs", section 5): at each level of each image's Laplacian pyramid, random 7x7 neighbourhoods are
descriptors of local structure (the finest level: edges and texture; the coarsest: colour and
layout). Descriptors are normalised per channel by the reference set's mean and standard deviation
(the paper normalises each set by its own, which would hide a global colour shift) and the sliced
Wasserstein distance between the two sets' descriptors is averaged over random projections.
Reported x 1000, as in the paper; `swd` is the mean over levels, the details hold each level.

Spectral artefact score (Durall et al. 2020, "Watch your up-convolution"): the azimuthally averaged
power spectrum of each image's luminance, averaged over each set; `spectral` is the mean absolute
difference of the two sets' log10 spectra over radial frequencies (0 when they match). The details
add the high-frequency ratio, the generated set's power in the upper half of the radii over the
reference's: transposed-convolution checkerboards raise it above 1, blur lowers it below. The radial
average mixes a periodic pattern's few directions with the rest of their ring, so the details also name
the strongest single frequency: the one where the generated set's 2-D power most exceeds the
reference's (a 2x layer's checkerboard sits at (Nyquist, Nyquist), often hundreds of times the photos'
power there).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

PATCH = 7
PATCHES_PER_IMAGE = 128
PROJECTIONS = 512  # random directions, drawn afresh for each level
SMALLEST_LEVEL = 16  # pyramid levels down to this side (the paper's 16x16)
SPECTRUM_FLOOR = 1e-12  # keeps log10 finite for an image set without any power at some frequency


def laplacian_pyramid(image: np.ndarray) -> list[np.ndarray]:
    """Levels of an (H, W, C) float32 image, finest first: band-pass differences, then the low-pass residual."""
    levels, current = [], image
    while min(current.shape[:2]) // 2 >= SMALLEST_LEVEL:
        smaller = cv2.pyrDown(current)
        expanded = cv2.pyrUp(smaller, dstsize=(current.shape[1], current.shape[0]))
        levels.append((current - expanded).reshape(current.shape))
        current = smaller.reshape(smaller.shape[0], smaller.shape[1], -1)
    levels.append(current)
    return levels


def level_descriptors(images: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Per pyramid level, (N * PATCHES_PER_IMAGE, PATCH * PATCH * C) descriptors of random neighbourhoods."""
    per_level: list[list[np.ndarray]] = []
    for image in images.astype(np.float32) / 255:
        for index, level in enumerate(laplacian_pyramid(image)):
            height, width, channels = level.shape
            top = rng.integers(0, height - PATCH + 1, PATCHES_PER_IMAGE)
            left = rng.integers(0, width - PATCH + 1, PATCHES_PER_IMAGE)
            windows = np.lib.stride_tricks.sliding_window_view(level, (PATCH, PATCH), axis=(0, 1))  # (H', W', C, P, P)
            if len(per_level) <= index:
                per_level.append([])
            per_level[index].append(windows[top, left].reshape(PATCHES_PER_IMAGE, channels * PATCH * PATCH))
    return [np.concatenate(level) for level in per_level]


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> float:
    """Mean over random unit directions of the 1-D Wasserstein-1 distance between the projections
    (sorted projections matched in order; the larger set is subsampled to the smaller's size)."""
    count = min(len(a), len(b))
    # the chosen rows in their original order: a matrix product may round a row differently at another
    # position (seen with one CPU's BLAS), and identical sets must project identically to score exactly 0
    a, b = a[np.sort(rng.choice(len(a), count, replace=False))], b[np.sort(rng.choice(len(b), count, replace=False))]
    directions = rng.standard_normal((a.shape[1], PROJECTIONS)).astype(np.float32)
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    return float(np.abs(np.sort(a @ directions, axis=0) - np.sort(b @ directions, axis=0)).mean())


def laplacian_swd(samples: np.ndarray, reference: np.ndarray, seed: int) -> dict[str, Any]:
    # both sets' patches at the same positions (image by image), so identical sets score exactly 0
    sample_levels = level_descriptors(samples, np.random.default_rng(seed))
    reference_levels = level_descriptors(reference, np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    per_level = []
    for generated, real in zip(sample_levels, reference_levels):
        channels = real.shape[1] // (PATCH * PATCH)
        by_channel = real.reshape(len(real), channels, -1)
        mean = by_channel.mean(axis=(0, 2)).repeat(PATCH * PATCH)
        std = by_channel.std(axis=(0, 2)).repeat(PATCH * PATCH) + 1e-8
        per_level.append(1000 * sliced_wasserstein((generated - mean) / std, (real - mean) / std, rng))
    sides = [samples.shape[1] // 2**i for i in range(len(per_level))]
    return {"swd": float(np.mean(per_level)), "levels": {f"{side}px": value for side, value in zip(sides, per_level)}}


def power_spectrum(images: torch.Tensor) -> torch.Tensor:
    """The mean over images (N, C, H, W, any range) of the 2-D power spectrum of the luminance (the
    channels' mean), zero frequency at (H // 2, W // 2)."""
    grey = images.float().mean(dim=1)
    grey = grey - grey.mean(dim=(1, 2), keepdim=True)  # the DC term would dwarf the rest
    return torch.fft.fftshift(torch.fft.fft2(grey), dim=(1, 2)).abs().pow(2).mean(dim=0)


def radial_power_spectrum(images: torch.Tensor) -> torch.Tensor:
    """`power_spectrum` averaged over each integer radius (0 to the corners). Differentiable: the GAN
    family's spectral regularisation (`loss.spectral_weight`) trains with this same statistic."""
    return radial_average(power_spectrum(images))


def frequency_radii(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """Each frequency's distance from zero, rounded, in a centred (height, width) spectrum: every radius
    up to the corners (a checkerboard's energy sits at (Nyquist, Nyquist), sqrt(2) x Nyquist out)."""
    yy, xx = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij")
    return torch.hypot((yy - height // 2).float(), (xx - width // 2).float()).round().long()


def radial_average(power: torch.Tensor) -> torch.Tensor:
    """A centred 2-D power spectrum's mean over each integer radius."""
    radius = frequency_radii(*power.shape, device=power.device).flatten()
    return torch.zeros(int(radius.max()) + 1, device=power.device).index_add_(0, radius, power.flatten()) / torch.bincount(radius)


def mean_log10_gap(generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean |log10| difference of two sets of spectral powers, frequency by frequency."""
    return (torch.log10(generated + SPECTRUM_FLOOR) - torch.log10(real + SPECTRUM_FLOOR)).abs().mean()


def log_spectrum_gap(generated: torch.Tensor, real: torch.Tensor, first_radius: int = 1) -> torch.Tensor:
    """Mean |log10| difference of two radial spectra from `first_radius` on (radius 0, the removed
    mean, never counts)."""
    first = max(1, first_radius)
    return mean_log10_gap(generated[first:], real[first:])


def _as_float(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) images as (N, C, H, W) floats in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255


def strongest_peak(generated: torch.Tensor, real: torch.Tensor) -> dict[str, Any]:
    """The frequency (vertical, horizontal; cycles per image) where one 2-D power spectrum most exceeds
    another, and by what factor. Radii below an eighth of the side are left out: there the power is
    which products and layouts a set drew, not texture."""
    height, width = real.shape
    yy, xx = torch.meshgrid(torch.arange(height) - height // 2, torch.arange(width) - width // 2, indexing="ij")
    textured = torch.hypot(yy.double(), xx.double()) >= min(height, width) / 8
    ratio = torch.where(textured, generated.double() / (real.double() + SPECTRUM_FLOOR), 0.0).flatten()
    at = int(ratio.argmax())
    vertical, horizontal = int(yy.flatten()[at]), int(xx.flatten()[at])
    if vertical < 0 or (vertical == 0 and horizontal < 0):  # a real image's spectrum is symmetric: name the upper half's twin
        vertical, horizontal = -vertical, -horizontal
    if horizontal == -(width // 2) and width % 2 == 0:  # -Nyquist and +Nyquist are one frequency
        horizontal = width // 2
    return {"frequency": [vertical, horizontal], "ratio": float(ratio[at])}


def spectral_distance(samples: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    power_generated, power_real = power_spectrum(_as_float(samples)), power_spectrum(_as_float(reference))
    full_generated, full_real = radial_average(power_generated), radial_average(power_real)
    distance = float(log_spectrum_gap(full_generated, full_real))
    generated, real = full_generated[1:].double().numpy(), full_real[1:].double().numpy()  # radius 0 is the removed mean
    high = slice(len(real) // 2, None)
    return {"spectral": distance, "high_frequency_ratio": float(generated[high].sum() / max(real[high].sum(), SPECTRUM_FLOOR)),
            "strongest_peak": strongest_peak(power_generated, power_real),
            "log10_spectrum_samples": np.log10(generated + SPECTRUM_FLOOR).round(4).tolist(),
            "log10_spectrum_reference": np.log10(real + SPECTRUM_FLOOR).round(4).tolist()}
