"""Reconstruction and likelihood metrics for autoencoding models (VAE family).

Image metrics compare uint8 (N, H, W, C) originals with their reconstructions and return one value
per image (numpy, float64), so callers can average, take medians or find the worst reconstructions:

    psnr(x, x_hat)   # dB, peak 255; math.inf for an identical pair
    ssim(x, x_hat)   # Wang et al. 2004 settings, via scikit-image (ssim_torch: the same, differentiable)
    mse(x, x_hat)    # mean squared error in [0, 1] pixel units

Likelihood terms (torch, differentiable, one value per image, in nats) give the ELBO and bits/dim:

    log_px = discretized_gaussian_log_likelihood(x, mean, log_scale)   # x in [-1, 1], 256 levels
    kl = gaussian_kl(mu, log_var)
    bits_per_dim(-(log_px - kl), dims=28 * 28 * 1)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from skimage.metrics import structural_similarity

PEAK = 255.0
# Width of one 8-bit bin on the [-1, 1] scale: the levels k / 127.5 - 1 are 2 / 255 apart.
BIN_WIDTH = 2.0 / 255.0
# SSIM's default Gaussian window (sigma 1.5, truncated at 3.5 sigma) spans 11 pixels.
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11


def _pair(original: np.ndarray, reconstructed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    original, reconstructed = np.asarray(original), np.asarray(reconstructed)
    if original.dtype != np.uint8 or reconstructed.dtype != np.uint8:
        raise ValueError(f"images must be uint8 in 0..255, got {original.dtype} and {reconstructed.dtype}")
    if original.ndim != 4 or original.shape != reconstructed.shape:
        raise ValueError(f"expected two (N, H, W, C) arrays of the same shape, got {original.shape} and {reconstructed.shape}")
    return original, reconstructed


def _squared_error(original: np.ndarray, reconstructed: np.ndarray) -> np.ndarray:
    # float64 before subtracting: uint8 arithmetic would wrap around.
    diff = original.astype(np.float64) - reconstructed.astype(np.float64)
    return (diff**2).reshape(len(diff), -1).mean(axis=1)


def mse(original: np.ndarray, reconstructed: np.ndarray) -> np.ndarray:
    """Mean squared error per image with pixels scaled to [0, 1] (so a value lies in [0, 1])."""
    original, reconstructed = _pair(original, reconstructed)
    return _squared_error(original, reconstructed) / PEAK**2


def psnr(original: np.ndarray, reconstructed: np.ndarray) -> np.ndarray:
    """Peak signal-to-noise ratio per image in dB, 10 log10(255^2 / MSE), the MSE taken over all
    pixels and channels of the image. An identical pair has MSE 0 and gets `math.inf` (no warning):
    averaging over a set that contains one then gives inf, so report a median or filter with
    numpy.isfinite when exact copies are possible."""
    original, reconstructed = _pair(original, reconstructed)
    error = _squared_error(original, reconstructed)
    out = np.full(len(error), math.inf)
    nonzero = error > 0
    out[nonzero] = 10.0 * np.log10(PEAK**2 / error[nonzero])
    return out


def ssim(original: np.ndarray, reconstructed: np.ndarray) -> np.ndarray:
    """Mean structural similarity per image (1 for identical images), with the settings of
    Wang et al. 2004: Gaussian weights (sigma 1.5), population covariances, K1=0.01, K2=0.03,
    data range 255; colour images average the per-channel SSIM. Images smaller than the 11-pixel
    window use the largest odd window that fits (it only sets the border cropped from the SSIM map;
    the Gaussian filter is the same)."""
    original, reconstructed = _pair(original, reconstructed)
    side = min(original.shape[1:3])
    win_size = SSIM_WINDOW if side >= SSIM_WINDOW else side - (1 - side % 2)
    return np.array(
        [
            structural_similarity(
                a, b, data_range=PEAK, channel_axis=-1, gaussian_weights=True, sigma=SSIM_SIGMA,
                use_sample_covariance=False, win_size=win_size,
            )
            for a, b in zip(original, reconstructed)
        ],
        dtype=np.float64,
    )


def ssim_torch(original: torch.Tensor, reconstructed: torch.Tensor) -> torch.Tensor:
    """`ssim` in torch, differentiable, for (N, C, H, W) images in the models' range [-1, 1]: the same
    Gaussian window and constants, computed where the whole window fits (the map `ssim` averages
    after cropping its border), so on images of at least 11 pixels a side the two agree up to the
    8-bit rounding `ssim` sees. One value per image (channels averaged). A loss (Snell et al. 2017
    trained autoencoders on SSIM) as well as a check of the numpy metric."""
    # SSIM's luminance term depends on the mean itself, so the pixels go to [0, 2] (0..255 scaled), not [-1, 1]
    original, reconstructed, data_range = original + 1, reconstructed + 1, 2.0
    radius = int(3.5 * SSIM_SIGMA + 0.5)  # scikit-image's truncate=3.5
    taps = torch.arange(-radius, radius + 1, dtype=original.dtype, device=original.device)
    kernel = torch.exp(-(taps**2) / (2 * SSIM_SIGMA**2))
    kernel = kernel / kernel.sum()
    channels = original.shape[1]

    def blur(x: torch.Tensor) -> torch.Tensor:  # separable Gaussian, one channel at a time, no padding
        x = torch.nn.functional.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
        return torch.nn.functional.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(original), blur(reconstructed)
    var_x = blur(original * original) - mu_x**2
    var_y = blur(reconstructed * reconstructed) - mu_y**2
    cov = blur(original * reconstructed) - mu_x * mu_y
    similarity = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return similarity.mean(dim=(1, 2, 3))


def _per_image_sum(values: torch.Tensor) -> torch.Tensor:
    return values.reshape(values.shape[0], -1).sum(dim=1)


# Below this, _log_ndtr uses the asymptotic series of the normal tail.
LOWER_TAIL = -20.0


def _log_ndtr(z: torch.Tensor) -> torch.Tensor:
    """log Phi(z) with gradients that stay exact in the far lower tail. torch.special.log_ndtr's
    values are accurate there, but its gradient is computed as exp(-z^2/2 - log_ndtr(z)), a
    difference of two huge numbers that turns to inf or NaN once z^2/2 outgrows float precision
    (around z < -1e3 in float32). Below -20 the series log(phi(z) / -z * (1 - u + 3u^2 - 15u^3)),
    u = 1/z^2, is within 1e-9 (relative) and autograd differentiates it exactly."""
    body = torch.special.log_ndtr(z.clamp(min=LOWER_TAIL))
    t = z.clamp(max=LOWER_TAIL)
    u = t.pow(-2)  # written in u so that no power of t overflows (and no inf * 0 in backward)
    tail = -0.5 * t.pow(2) - torch.log(-t) - 0.5 * math.log(2 * math.pi) + torch.log1p(u * (-1.0 + u * (3.0 - 15.0 * u)))
    return torch.where(z < LOWER_TAIL, tail, body)


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log p(x) in nats per image for 8-bit data under a Gaussian discretised to 256 bins.

    `x` holds the data on the [-1, 1] scale (exactly the values k / 127.5 - 1, k = 0..255); `mean`
    and `log_scale` (natural log of the standard deviation) broadcast against it, batch first. Each
    pixel's probability is the Gaussian mass of its bin [x - 1/255, x + 1/255], with the bins of 0
    and 255 extended to -inf and +inf so that the 256 probabilities sum to 1 (the discretised decoder
    of PixelCNN++ and Ho et al. 2020, with a Gaussian instead of a logistic). Summed over all
    non-batch dimensions; differentiable in `mean` and `log_scale`, with finite gradients for any
    finite inputs. `x` is snapped to the nearest of the 256 levels (it must not be dequantised).
    """
    # Bin edges from the integer level, not x -+ 1/255: that way the upper edge of level k and the
    # lower edge of level k + 1 are the same float, and the 256 probabilities telescope to exactly 1
    # (in float32, x -+ 1/255 leaves gaps of ~1e-7 that hold real mass when the scale is small).
    level = torch.round((x + 1.0) * 127.5)
    # Standardised bin edges and centre. Beyond |z| = 1e15 a bin's log-probability is below -5e29
    # either way; the clamps keep exp(-log_scale) and z^2 finite in float32, so that no inf * 0
    # turns into a NaN gradient (a scale under e^-60, 1e-26, counts as e^-60 in z).
    inv_scale = torch.exp(-log_scale.clamp(min=-60.0))
    limit = 1e15
    lower = (((level - 0.5) / 127.5 - 1.0 - mean) * inv_scale).clamp(-limit, limit)
    upper = (((level + 0.5) / 127.5 - 1.0 - mean) * inv_scale).clamp(-limit, limit)
    centre = ((x - mean) * inv_scale).clamp(-limit, limit)

    # Edge bins: log Phi(upper) and log(1 - Phi(lower)) = log Phi(-lower), both accurate in the tails.
    log_first = _log_ndtr(upper)
    log_last = _log_ndtr(-lower)

    # Inner bins: log(Phi(b) - Phi(a)). Reflect the bin to the left half (Phi(b) - Phi(a) =
    # Phi(-a) - Phi(-b)), where Phi is small and log_ndtr keeps its relative precision; then
    # log(Phi(b) - Phi(a)) = log Phi(b) + log(1 - exp(log Phi(a) - log Phi(b))).
    reflect = (lower + upper) > 0
    a = torch.where(reflect, -upper, lower)
    b = torch.where(reflect, -lower, upper)
    log_b = _log_ndtr(b)
    gap = _log_ndtr(a) - log_b  # <= 0
    # The difference loses precision (or underflows to 0) when the bin is narrow next to the
    # standard deviation, or deep in a tail: there the density at the centre times the bin width
    # is accurate instead (its log is off by about w^2 |z^2 - 1| / 24, w the width in standard
    # units: under 1e-6 nats for w < 1e-3 and |z| < 5, i.e. a mean within 39 of the data).
    log_width = math.log(BIN_WIDTH) - log_scale
    exact = (log_width > math.log(1e-3)) & (gap < -1e-5)
    # Evaluate log(-expm1(gap)) only where it is used: torch.where passes 0 * inf = NaN gradients
    # back from the branch it discards.
    safe_gap = torch.where(exact, gap, torch.full_like(gap, -1.0))
    log_inner_exact = log_b + torch.log(-torch.expm1(safe_gap))
    log_inner_approx = -0.5 * centre**2 - 0.5 * math.log(2 * math.pi) + log_width
    log_inner = torch.where(exact, log_inner_exact, log_inner_approx)

    log_probs = torch.where(level <= 0, log_first, torch.where(level >= 255, log_last, log_inner))
    return _per_image_sum(log_probs)


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) in nats per image, summed over the latent dimensions:
    0.5 * sum(mean^2 + exp(log_var) - 1 - log_var)."""
    return _per_image_sum(0.5 * (mean.pow(2) + torch.exp(log_var) - 1.0 - log_var))


def bits_per_dim(negative_elbo_nats: float | torch.Tensor | np.ndarray, dims: int) -> float:
    """Nats per image (one value, or per-image values which are averaged) to bits per dimension:
    nats / (dims * ln 2), `dims` being the values per image (H * W * C)."""
    if isinstance(negative_elbo_nats, torch.Tensor):
        negative_elbo_nats = negative_elbo_nats.detach().double().mean().item()
    return float(np.mean(negative_elbo_nats)) / (dims * math.log(2.0))
