"""The metric formulas on feature arrays with known answers."""

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.spatial.distance import cdist

from prodgen.errors import ProdgenError
from prodgen.metrics.fid import fid_from_features, frechet_distance
from prodgen.metrics.kid import kernel_distance, unbiased_mmd2
from prodgen.metrics.memorisation import copy_threshold, memorisation
from prodgen.metrics.prdc import DENSITY_COVERAGE_K, PRECISION_RECALL_K, density_coverage, metric_definitions, precision_recall

torch.set_num_threads(2)


def _random_covariance(rng: np.random.Generator, dim: int) -> np.ndarray:
    a = rng.normal(size=(dim, dim))
    return a @ a.T / dim + 0.1 * np.eye(dim)


def _analytic_fid(mu1, s1, mu2, s2) -> float:
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def test_fid_of_identical_sets_is_zero():
    features = np.random.default_rng(0).normal(size=(2000, 32))
    assert fid_from_features(features, features) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_matches_formula_on_exact_statistics():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    s1, s2 = _random_covariance(rng, 16), _random_covariance(rng, 16)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_analytic_fid(mu1, s1, mu2, s2), rel=1e-8)


def test_fid_of_two_gaussians_sampled_matches_analytic_value():
    rng = np.random.default_rng(2)
    dim, n = 8, 20_000
    mu1, mu2 = np.zeros(dim), np.full(dim, 0.5)
    s1, s2 = _random_covariance(rng, dim), _random_covariance(rng, dim)
    x = rng.multivariate_normal(mu1, s1, size=n)
    y = rng.multivariate_normal(mu2, s2, size=n)
    expected = _analytic_fid(mu1, s1, mu2, s2)
    assert expected > 1.0
    assert fid_from_features(x, y) == pytest.approx(expected, rel=0.03)


def test_fid_handles_singular_covariances():
    rng = np.random.default_rng(3)
    low_rank = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 20))  # rank 3 in 20 dimensions
    value = fid_from_features(low_rank, low_rank + 1.0)
    assert np.isfinite(value) and value == pytest.approx(20.0, rel=1e-6)  # mean shift of 1 in each of 20 dims


def test_unbiased_mmd_matches_brute_force():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(7, 3)), rng.normal(1.0, size=(7, 3))
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert unbiased_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(3000, 16)), rng.normal(size=(3000, 16))
    same_mean, same_std = kernel_distance(a, b, num_subsets=20, subset_size=500, seed=0)
    shifted_mean, _ = kernel_distance(a, b + 0.5, num_subsets=20, subset_size=500, seed=0)
    assert abs(same_mean) < 3 * same_std + 1e-3
    assert shifted_mean > 10 * abs(same_mean) and shifted_mean > 0.01


def test_kid_is_reproducible_for_a_seed():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(800, 8)), rng.normal(size=(800, 8))
    assert kernel_distance(a, b, 10, 200, seed=3) == kernel_distance(a, b, 10, 200, seed=3)
    assert kernel_distance(a, b, 10, 200, seed=3) != kernel_distance(a, b, 10, 200, seed=4)


def _naive_prdc(real, fake, k):
    real_radii = np.sort(cdist(real, real), axis=1)[:, k]
    fake_radii = np.sort(cdist(fake, fake), axis=1)[:, k]
    d = cdist(fake, real)
    precision = (d <= real_radii[None]).any(1).mean()
    recall = (d.T <= fake_radii[None]).any(1).mean()
    density = (d <= real_radii[None]).sum() / (k * len(fake))
    coverage = (d.min(0) < real_radii).mean()
    return precision, recall, density, coverage


@pytest.mark.parametrize("k", [3, 5])
def test_prdc_matches_naive_implementation(k):
    rng = np.random.default_rng(7)
    real, fake = rng.normal(size=(300, 5)), rng.normal(0.3, 1.2, size=(250, 5))
    got = (*precision_recall(real, fake, k), *density_coverage(real, fake, k))
    assert got == pytest.approx(_naive_prdc(real, fake, k), abs=1e-6)


# Real points 0..9 on a line; generated: 0.5..4.5 (inside the real range) and 12.6..16.6 (beyond it).
# No distance equals a radius, so the answers below do not hang on float rounding.
_LINE_REAL = np.arange(10, dtype=np.float64)[:, None]
_LINE_FAKE = np.array([0.5, 1.5, 2.5, 3.5, 4.5, 12.6, 13.6, 14.6, 15.6, 16.6])[:, None]


def test_knn_metrics_by_hand_for_k_3_and_5():
    # Real k-th neighbour radii: k=3 -> 3 at the ends (0, 9), 2 elsewhere; k=5 -> 5, 4, 3 ... 3, 4, 5.
    # Precision: the real balls reach up to 9 + 3 = 12 (k=3) or 9 + 5 = 14 (k=5): 5 of 10 fakes
    # inside with k=3; with k=5 also 12.6 and 13.6, 7 of 10.
    assert precision_recall(_LINE_REAL, _LINE_FAKE, 3)[0] == pytest.approx(0.5)
    assert precision_recall(_LINE_REAL, _LINE_FAKE, 5)[0] == pytest.approx(0.7)
    # Recall: fake radii k=3 -> 3 for 4.5 and 12.6, so the balls reach 7.5 and 9.6: real 8 and 9 are
    # outside (8 of 10); k=5 -> 4.5's 5th neighbour is 12.6 (radius 8.1): every real point inside.
    assert precision_recall(_LINE_REAL, _LINE_FAKE, 3)[1] == pytest.approx(0.8)
    assert precision_recall(_LINE_REAL, _LINE_FAKE, 5)[1] == pytest.approx(1.0)
    # Density: real balls holding each fake, k=5: 4+5+6+7+10 (lower fakes) + 1+1 (12.6, 13.6 in 9's
    # ball) = 34 of k*10 = 50; k=3: 3+4+5+4+4 = 20 of 30.
    # Coverage: nearest fakes of real 6, 7, 8, 9 are 1.5, 2.5, 3.5, 3.6 away, 0.5 for 0..5: all inside
    # their k=5 radius (3, 3, 4, 5); with k=3 (2, 2, 2, 3) 7, 8 and 9 are not covered.
    assert density_coverage(_LINE_REAL, _LINE_FAKE, 5) == pytest.approx((34 / 50, 1.0))
    assert density_coverage(_LINE_REAL, _LINE_FAKE, 3) == pytest.approx((20 / 30, 0.7))


def test_precision_recall_default_to_k_3_and_density_coverage_to_k_5():
    assert (PRECISION_RECALL_K, DENSITY_COVERAGE_K) == (3, 5)
    assert precision_recall(_LINE_REAL, _LINE_FAKE) == pytest.approx((0.5, 0.8))  # the k=3 answers above
    assert density_coverage(_LINE_REAL, _LINE_FAKE) == pytest.approx((34 / 50, 1.0))  # the k=5 answers above
    assert metric_definitions() == {
        "precision": "Kynkäänniemi et al. 2019, k=3",
        "recall": "Kynkäänniemi et al. 2019, k=3",
        "density": "Naeem et al. 2020, k=5",
        "coverage": "Naeem et al. 2020, k=5",
    }


def test_prdc_of_identical_sets_is_perfect():
    real = np.random.default_rng(8).normal(size=(1000, 16))
    precision, recall = precision_recall(real, real.copy())
    density, coverage = density_coverage(real, real.copy())
    assert precision == 1.0 and recall == 1.0 and coverage == 1.0
    # each real ball holds its own centre and its k neighbours: (k + 1) / k, with the default k = 5
    assert density == pytest.approx(6 / 5)


def test_one_repeated_sample_has_recall_and_coverage_near_zero():
    real = np.random.default_rng(9).normal(size=(2000, 16))
    collapsed = np.repeat(real[:1], 2000, axis=0)
    precision, recall = precision_recall(real, collapsed)
    _, coverage = density_coverage(real, collapsed)
    assert precision == 1.0  # the one image is perfectly realistic...
    assert recall < 0.01 and coverage < 0.01  # ...but covers nothing else


def test_knn_metrics_need_more_than_k_samples():
    with pytest.raises(ProdgenError, match="more than 3"):
        precision_recall(np.zeros((10, 2)), np.zeros((3, 2)))
    with pytest.raises(ProdgenError, match="more than 5"):
        density_coverage(np.zeros((10, 2)), np.zeros((5, 2)))
    assert density_coverage(np.arange(10.0)[:, None], np.arange(6.0)[:, None])[1] > 0  # 6 > 5 is enough


def test_memorisation_of_copies_is_one_and_of_new_points_about_one_percent():
    rng = np.random.default_rng(10)
    train, new = rng.normal(size=(5000, 8)), rng.normal(size=(2000, 8))
    threshold = copy_threshold(train)
    copies = memorisation(train[:500] + 1e-4, train, threshold)
    assert copies.share == 1.0
    assert copies.closest_pairs(3)[0]["train"] == copies.nearest_train_indices[copies.closest_pairs(3)[0]["sample"]]
    assert memorisation(new, train, threshold).share == pytest.approx(0.01, abs=0.01)


def test_copy_threshold_is_the_percentile_of_each_train_point_to_its_nearest_other():
    train = np.array([[0.0], [1.0], [3.0], [7.0], [15.0]])  # nearest-other distances 1, 1, 2, 4, 8
    assert copy_threshold(train, percentile=50) == pytest.approx(2.0)
    assert copy_threshold(train, percentile=0) == pytest.approx(1.0)
    # A random part of a large train set, each point still against all of them, estimates the same percentile.
    many = np.random.default_rng(11).normal(size=(4000, 4))
    assert copy_threshold(many, percentile=10, photos=1000) == pytest.approx(copy_threshold(many, percentile=10), rel=0.1)
    with pytest.raises(ValueError, match="at least 2"):
        copy_threshold(train[:1])
