"""Reconstruction metrics (PSNR, SSIM, MSE) and the likelihood terms of the ELBO, on inputs with
answers worked out by hand."""

import math

import numpy as np
import pytest
import torch

from prodgen.metrics.reconstruction import (
    bits_per_dim,
    discretized_gaussian_log_likelihood,
    gaussian_kl,
    mse,
    psnr,
    ssim,
    ssim_torch,
)

torch.set_num_threads(1)

LEVELS = 256


def _textured(shape=(3, 32, 32, 3), seed=0) -> np.ndarray:
    """Smooth random images kept within 40..215, so that +-40 of noise never clips."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 215, size=(shape[0], shape[1] // 4, shape[2] // 4, shape[3]))
    return np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2).round().astype(np.uint8)


def _checkerboard(shape) -> np.ndarray:
    n, h, w, c = shape
    return np.where((np.arange(h)[:, None] + np.arange(w)[None, :]) % 2 == 0, 1, -1)[None, :, :, None] * np.ones(shape, dtype=np.int64)


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _all_levels(dtype=torch.float64) -> torch.Tensor:
    """The 256 data values k / 127.5 - 1 as a batch of one-pixel images."""
    return (torch.arange(LEVELS, dtype=dtype) / 127.5 - 1.0).reshape(LEVELS, 1, 1, 1)


# --- PSNR, SSIM, MSE -------------------------------------------------------------------------


def test_identical_images_are_perfect():
    images = _textured()
    assert np.all(psnr(images, images) == math.inf)
    np.testing.assert_allclose(ssim(images, images), 1.0, atol=1e-12)
    np.testing.assert_array_equal(mse(images, images), 0.0)
    assert psnr(images, images).shape == ssim(images, images).shape == mse(images, images).shape == (3,)


def test_checkerboard_noise_has_known_mse_and_psnr():
    # +-10 on every pixel: squared error exactly 100 everywhere.
    images = _textured()
    noisy = (images.astype(np.int64) + 10 * _checkerboard(images.shape)).astype(np.uint8)
    np.testing.assert_allclose(mse(images, noisy), (10 / 255) ** 2, rtol=1e-12)
    np.testing.assert_allclose(psnr(images, noisy), 20 * math.log10(255 / 10), rtol=1e-12)  # 28.13 dB
    assert np.all(ssim(images, noisy) < 1.0)


def test_psnr_is_finite_for_one_changed_pixel_and_symmetric():
    a = np.zeros((2, 8, 8, 1), dtype=np.uint8)
    b = a.copy()
    b[0, 3, 4, 0] = 255  # image 0: MSE 255^2 / 64; image 1 identical
    values = psnr(a, b)
    assert values[0] == pytest.approx(10 * math.log10(64))
    assert values[1] == math.inf
    np.testing.assert_array_equal(values, psnr(b, a))


def test_ssim_of_constant_images_is_the_luminance_term():
    # Both images flat: variances and covariance are 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    # with C1 = (0.01 * 255)^2, in every window and every channel.
    a, b = 100.0, 120.0
    c1 = (0.01 * 255) ** 2
    x = np.full((1, 16, 16, 3), a, dtype=np.uint8)
    y = np.full((1, 16, 16, 3), b, dtype=np.uint8)
    assert ssim(x, y)[0] == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-9)


def test_ssim_and_psnr_fall_monotonically_with_noise():
    images = _textured(shape=(2, 28, 28, 1), seed=3)
    unit = np.random.default_rng(7).standard_normal(images.shape)
    scores, peaks = [], []
    for sigma in (0, 2, 5, 10, 20, 40):
        noisy = np.clip(images + sigma * unit, 0, 255).round().astype(np.uint8)
        scores.append(ssim(images, noisy))
        peaks.append(psnr(images, noisy))
    scores, peaks = np.array(scores), np.array(peaks)
    assert np.all(np.diff(scores, axis=0) < 0), scores
    assert np.all(np.diff(peaks, axis=0) < 0), peaks
    assert np.all(scores[1] > 0.95) and np.all(scores[-1] < 0.8)


@pytest.mark.parametrize("side", [1, 2, 5, 6, 10])
def test_ssim_works_on_images_smaller_than_the_window(side):
    rng = np.random.default_rng(side)
    x = rng.integers(0, 256, size=(2, side, side, 3), dtype=np.uint8)
    y = np.clip(x.astype(np.int64) + 30, 0, 255).astype(np.uint8)
    np.testing.assert_allclose(ssim(x, x), 1.0, atol=1e-12)
    assert np.all(ssim(x, y) < 1.0)


@pytest.mark.parametrize(("shape", "noise"), [((4, 28, 28, 1), 40), ((3, 32, 30, 3), 60), ((2, 11, 11, 1), 20)])
def test_the_torch_ssim_equals_the_metric_and_has_gradients(shape, noise):
    """The differentiable SSIM (a VAE-GAN loss) computes exactly what the reported metric does."""
    rng = np.random.default_rng(shape[1])
    x = rng.integers(0, 256, size=shape, dtype=np.uint8)
    y = np.clip(x.astype(np.int64) + rng.integers(-noise, noise, size=shape), 0, 255).astype(np.uint8)

    def model_range(images):
        return torch.from_numpy(images).permute(0, 3, 1, 2).double() / 127.5 - 1

    reconstructed = model_range(y).requires_grad_(True)
    similarity = ssim_torch(model_range(x), reconstructed)
    np.testing.assert_allclose(similarity.detach().numpy(), ssim(x, y), atol=1e-12)
    similarity.sum().backward()
    assert torch.isfinite(reconstructed.grad).all() and reconstructed.grad.abs().sum() > 0


def test_bad_inputs_are_refused():
    images = _textured()
    with pytest.raises(ValueError, match="uint8"):
        psnr(images.astype(np.float32), images.astype(np.float32))
    with pytest.raises(ValueError, match="same shape"):
        ssim(images, images[:2])
    with pytest.raises(ValueError, match="same shape"):
        mse(images[0], images[0])


# --- discretised Gaussian likelihood -----------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mean", [-40.0, -1.0, -0.5, 0.0, 1 / 255, 0.3, 1.0, 1.7, 40.0])
@pytest.mark.parametrize("log_scale", [-100.0, -20.0, -9.0, -5.0, -2.0, 0.0, 1.5, 4.0, 20.0, 100.0])
def test_probabilities_of_the_256_levels_sum_to_one(dtype, mean, log_scale):
    x = _all_levels(dtype)
    log_p = discretized_gaussian_log_likelihood(x, torch.tensor(mean, dtype=dtype), torch.tensor(log_scale, dtype=dtype))
    assert log_p.shape == (LEVELS,)
    assert torch.all(log_p <= 1e-6)
    assert log_p.double().exp().sum().item() == pytest.approx(1.0, abs=1e-5)


def test_log_likelihood_matches_erf_by_hand():
    # Three pixels of one image: level 0 (bin (-inf, -1 + 1/255]), level 10 and level 255
    # (bin [1 - 1/255, inf)), each with its own mean and standard deviation.
    levels = [0, 10, 255]
    means = [-0.9, -0.95, 0.98]
    scales = [0.05, 0.02, 0.01]
    expected = 0.0
    for k, m, s in zip(levels, means, scales):
        x = k / 127.5 - 1
        upper = _phi((x + 1 / 255 - m) / s)
        lower = _phi((x - 1 / 255 - m) / s)
        expected += math.log(upper if k == 0 else 1 - lower if k == 255 else upper - lower)
    x = torch.tensor([[k / 127.5 - 1 for k in levels]], dtype=torch.float64)
    mean, log_scale = torch.tensor([means], dtype=torch.float64), torch.log(torch.tensor([scales], dtype=torch.float64))
    got = discretized_gaussian_log_likelihood(x, mean, log_scale)
    assert got.shape == (1,)
    assert got.item() == pytest.approx(expected, rel=1e-9)
    got32 = discretized_gaussian_log_likelihood(x.float(), torch.tensor([means]), torch.log(torch.tensor([scales])))
    assert got32.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("scale", [0.5, 7.0, 9.0, 300.0])
def test_wide_gaussians_stay_accurate_on_both_sides_of_the_fallback(scale):
    # Bins much narrower than the scale: the CDF difference (scale 0.5, 7) and, below 1e-3 scale
    # units per bin (9, 300), the density at the centre times the width 2/255. Both must match the
    # erf difference by hand; for a wide Gaussian that is also about density times width.
    mean, k = 0.2, 40
    x = k / 127.5 - 1
    z = (x - mean) / scale
    expected = math.log(_phi((x + 1 / 255 - mean) / scale) - _phi((x - 1 / 255 - mean) / scale))
    got = discretized_gaussian_log_likelihood(
        torch.tensor([[x]], dtype=torch.float64), torch.tensor(mean, dtype=torch.float64), torch.tensor(math.log(scale), dtype=torch.float64)
    ).item()
    assert got == pytest.approx(expected, rel=1e-8)
    density_times_width = -0.5 * z * z - math.log(scale * math.sqrt(2 * math.pi)) + math.log(2 / 255)
    assert got == pytest.approx(density_times_width, abs=1e-4)


def test_sums_over_all_but_the_batch_dimension_and_broadcasts():
    rng = torch.Generator().manual_seed(0)
    x = torch.randint(0, LEVELS, (4, 3, 5, 5), generator=rng).double() / 127.5 - 1
    mean = torch.rand(4, 3, 5, 5, generator=rng, dtype=torch.float64) * 2 - 1
    log_scale = torch.tensor([-3.0, -2.0, -1.0], dtype=torch.float64).reshape(1, 3, 1, 1)
    total = discretized_gaussian_log_likelihood(x, mean, log_scale)
    per_pixel = [discretized_gaussian_log_likelihood(x[:, c : c + 1], mean[:, c : c + 1], log_scale[:, c : c + 1]) for c in range(3)]
    assert total.shape == (4,)
    torch.testing.assert_close(total, sum(per_pixel))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("log_scale", [-200.0, -80.0, -30.0, -10.0, 0.0, 10.0, 30.0, 80.0, 200.0])
def test_gradients_are_finite_for_extreme_log_scales(dtype, log_scale):
    x = _all_levels(dtype).reshape(1, LEVELS)
    for mean_value in (-1e4, -1.0, 0.0, 1 / 255, 0.37, 1.0, 20.0):
        mean = torch.full((1, LEVELS), mean_value, dtype=dtype, requires_grad=True)
        log_s = torch.full((1, LEVELS), log_scale, dtype=dtype, requires_grad=True)
        out = discretized_gaussian_log_likelihood(x, mean, log_s)
        out.sum().backward()
        assert not torch.isnan(out).any()
        assert torch.isfinite(mean.grad).all() and torch.isfinite(log_s.grad).all(), (mean_value, log_scale)


def test_gradients_match_finite_differences():
    # Moderate scales (the exact CDF-difference branch) and a mean 60 standard deviations away
    # (the tail series of log Phi).
    x = torch.tensor([[-1.0, 10 / 127.5 - 1, 0.0 + 0.5 / 127.5, 1.0]], dtype=torch.float64)
    for mean_value, log_scale_value in ((0.1, -2.5), (-0.3, -0.5), (0.9, -4.0)):
        mean = torch.full_like(x, mean_value).requires_grad_()
        log_scale = torch.full_like(x, log_scale_value).requires_grad_()
        assert torch.autograd.gradcheck(discretized_gaussian_log_likelihood, (x, mean, log_scale))
    far = torch.full_like(x, 1.0 + 60 * 0.02).requires_grad_()
    assert torch.autograd.gradcheck(discretized_gaussian_log_likelihood, (x, far, torch.full_like(x, math.log(0.02)).requires_grad_()))


# --- KL and bits per dimension ------------------------------------------------------------------


def test_kl_of_the_prior_is_zero():
    assert torch.all(gaussian_kl(torch.zeros(3, 20), torch.zeros(3, 20)) == 0)


def test_kl_matches_the_formula_by_hand():
    mean = torch.tensor([[0.5, -1.0], [0.0, 2.0]], dtype=torch.float64)
    log_var = torch.tensor([[0.0, math.log(4.0)], [-1.0, 0.5]], dtype=torch.float64)
    expected = [
        0.5 * ((0.25 + 1 - 1 - 0) + (1 + 4 - 1 - math.log(4.0))),
        0.5 * ((0 + math.exp(-1) - 1 + 1) + (4 + math.exp(0.5) - 1 - 0.5)),
    ]
    torch.testing.assert_close(gaussian_kl(mean, log_var), torch.tensor(expected, dtype=torch.float64))
    assert gaussian_kl(mean.reshape(2, 1, 2, 1), log_var.reshape(2, 1, 2, 1)).shape == (2,)


def test_bits_per_dim():
    assert bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)
    assert bits_per_dim(torch.tensor([1.0, 3.0]) * 784 * math.log(2), 784) == pytest.approx(2.0)
    assert bits_per_dim(np.array([2.0]) * 10 * math.log(2), 10) == pytest.approx(2.0)
