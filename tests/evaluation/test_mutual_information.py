"""The histogram mutual information behind MIG, against a bivariate Gaussian whose MI is known.

For (x, y) standard normal with correlation ρ, I(x; y) = −½ log(1 − ρ²). MIG bins the latents
into equal-width bins, so the estimate carries two errors, both with known sizes:

* discretisation: binning loses information (data processing), about
  (h_x² + h_y²)/24 · (1/(1 − ρ²) − 1) nats for bin widths h (the Fisher information of x given y
  minus that of x, times h²/12, halved per axis);
* sampling: the plug-in estimate of the binned MI is biased up by (B_x − 1)(B_y − 1)/(2n)
  (Miller–Madow) and has standard error sd(log p_ij / (p_i p_j)) / √n, computed here from the
  exact cell probabilities of the binned Gaussian (bivariate normal CDF on the bin edges).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.metrics import mutual_info_score

from vizvae.evaluation.disentanglement import discretize, mutual_information, mutual_information_matrix

RHO, N, BINS = 0.8, 200_000, 20


def correlated_gaussian(rho: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2)) @ np.linalg.cholesky([[1.0, rho], [rho, 1.0]]).T  # (n, 2)


def bin_edges(column: np.ndarray, bins: int) -> np.ndarray:
    """The edges ``discretize`` uses (equal width over the sample's range), open at both ends."""
    edges = np.linspace(column.min(), column.max(), bins + 1)
    edges[0], edges[-1] = -12.0, 12.0  # beyond ±12σ the mass is below 1e-32
    return edges


def binned_gaussian_mi(rho: float, x_edges: np.ndarray, y_edges: np.ndarray) -> tuple[float, float]:
    """Exact I of the binned pair, and the variance of log p_ij/(p_i p_j) under the cells' law."""
    grid = np.stack(np.meshgrid(x_edges, y_edges, indexing="ij"), axis=-1)
    cdf = multivariate_normal(mean=[0.0, 0.0], cov=[[1.0, rho], [rho, 1.0]]).cdf(grid)
    cells = np.clip(np.diff(np.diff(cdf, axis=0), axis=1), 0.0, None)  # (B_x, B_y)
    outer = cells.sum(1, keepdims=True) * cells.sum(0, keepdims=True)
    nonzero = cells > 0
    log_ratio = np.log(cells[nonzero] / outer[nonzero])
    mi = float((cells[nonzero] * log_ratio).sum())
    return mi, float((cells[nonzero] * log_ratio ** 2).sum() - mi ** 2)


def hand_mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """Σ p(a, b) log p(a, b) / (p(a) p(b)) over the contingency table, written out."""
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= joint.sum()
    outer = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
    nonzero = joint > 0
    return float((joint[nonzero] * np.log(joint[nonzero] / outer[nonzero])).sum())


@pytest.fixture(scope="module")
def binned_sample():
    z = correlated_gaussian(RHO, N, seed=0)
    codes = discretize(z, BINS)
    exact, variance = binned_gaussian_mi(RHO, bin_edges(z[:, 0], BINS), bin_edges(z[:, 1], BINS))
    widths = (z.max(0) - z.min(0)) / BINS
    return z, codes, exact, variance, widths


def test_binned_mi_of_a_correlated_gaussian_matches_the_exact_binned_mi_within_its_standard_error(binned_sample):
    _, codes, exact, variance, _ = binned_sample
    estimate = mutual_information(codes[:, 0], codes[:, 1])
    bias = (BINS - 1) ** 2 / (2 * N)  # Miller–Madow: the plug-in estimate's expected excess
    standard_error = math.sqrt(variance / N)
    assert abs(estimate - exact - bias) <= 4 * standard_error


def test_binned_mi_approaches_the_analytic_mi_of_a_correlated_gaussian(binned_sample):
    _, codes, exact, variance, widths = binned_sample
    analytic = -0.5 * math.log(1 - RHO ** 2)
    discretisation = float((widths ** 2).sum()) / 24 * (1 / (1 - RHO ** 2) - 1)
    assert 0 < analytic - exact <= discretisation  # binning only loses information, and that little
    estimate = mutual_information(codes[:, 0], codes[:, 1])
    sampling = (BINS - 1) ** 2 / (2 * N) + 4 * math.sqrt(variance / N)
    assert abs(estimate - analytic) <= discretisation + sampling
    # finer bins lose less: with twice the bins the exact binned MI is about 4x closer
    z = binned_sample[0]
    finer, _ = binned_gaussian_mi(RHO, bin_edges(z[:, 0], 2 * BINS), bin_edges(z[:, 1], 2 * BINS))
    assert 0 < analytic - finer < (analytic - exact) / 3


def test_mutual_information_is_sklearns_and_the_contingency_table_sum():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 7, size=5000)
    b = (a + rng.integers(0, 3, size=5000)) % 5  # dependent on a, with noise
    assert mutual_information(a, b) == pytest.approx(hand_mutual_information(a, b), abs=1e-12)
    assert mutual_information(a, b) == pytest.approx(mutual_info_score(a, b), abs=1e-15)
    matrix = mutual_information_matrix(np.stack([a, b], 1), np.stack([b, a, a // 2], 1))
    assert matrix.shape == (2, 3)
    assert matrix[1, 0] == pytest.approx(hand_mutual_information(b, b))  # I(b; b) = H(b)
    assert matrix[0, 2] == pytest.approx(hand_mutual_information(a // 2, a // 2))  # a function of a: I = H(a // 2)
