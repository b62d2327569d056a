"""Factor analysis as a VAE: a model whose conditional p(x_U | x_O) is known in closed form, for the
imputation methods of ``vizvae.inference.imputers``.

p(z) = N(0, I_2), p(x | z) = N(W z + b, σ² I_6). Given the observed entries O,

    p(z | x_O)   = N(Σ_O W_Oᵀ (x_O − b_O) / σ², Σ_O),   Σ_O = (I + W_Oᵀ W_O / σ²)⁻¹,
    p(x_U | x_O) = N(b_U + W_U E[z | x_O],  W_U Σ_O W_Uᵀ + σ² I).

The columns of W are orthogonal, so for a complete x the posterior covariance is diagonal and a
diagonal-Gaussian encoder *can* be exact. The "encoder" computes p(z | x_O) exactly — its mean and
its marginal standard deviations, a diagonal approximation when some entries are missing — and can be
distorted: ``gain`` scales its mean, ``shift`` moves it, ``std_scale`` widens it. With ``gain = 1``,
``shift = 0``, ``std_scale = 1`` it is exact on complete rows, which makes pseudo-Gibbs an exact Gibbs
sampler; otherwise pseudo-Gibbs is biased and the other samplers must correct for it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vizvae.models.base import LatentVariableModel, ModelConfig
from vizvae.models.distributions import DiagonalGaussian, GaussianLikelihood

DTYPE = torch.float64
SIGMA = 0.5
_Q, _ = torch.linalg.qr(torch.tensor([[1.0, 0.3], [0.8, -0.5], [-0.4, 1.1], [0.5, 0.9], [1.2, -0.2], [-0.3, -0.7]],
                                     dtype=DTYPE))
W = _Q * torch.tensor([2.0, 1.5], dtype=DTYPE)  # (6, 2), orthogonal columns
B = torch.tensor([0.3, -0.2, 0.5, 0.0, -0.4, 0.1], dtype=DTYPE)
X = torch.tensor([1.1, 0.4, -0.6, 0.9, 0.2, -0.5], dtype=DTYPE)
MASK = torch.tensor([True, True, True, False, False, False])  # the last three entries hidden
N = 2000  # independent draws (chains) per check: Monte Carlo errors of a few per cent
WRONG = dict(gain=0.8, shift=0.2, std_scale=1.3)  # an encoder off the posterior (but covering it)


class FactorAnalysis(LatentVariableModel):
    """The model above, with its exact (optionally distorted) posterior as the encoder."""

    def __init__(self, gain: float = 1.0, shift: float = 0.0, std_scale: float = 1.0):
        super().__init__(ModelConfig())
        self.weight = nn.Parameter(W.clone(), requires_grad=False)
        self.bias = nn.Parameter(B.clone(), requires_grad=False)
        self.gain, self.shift, self.std_scale = gain, shift, std_scale

    @property
    def latent_dims(self) -> list[int]:
        return [2]

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> DiagonalGaussian:
        mean, covariance = posterior(x, mask)
        std = torch.diagonal(covariance, dim1=-2, dim2=-1).sqrt()
        return DiagonalGaussian(self.gain * mean + self.shift, self.std_scale * std)

    def decode(self, z: torch.Tensor) -> GaussianLikelihood:
        mean = z @ self.weight.T + self.bias
        return GaussianLikelihood(mean, torch.full_like(mean, math.log(SIGMA)))


def posterior(x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact p(z | x_O): mean (..., 2) and covariance (..., 2, 2), batched over rows of x (..., 6)."""
    observed = torch.ones_like(x) if mask is None else mask.to(x.dtype)
    precision = torch.eye(2, dtype=x.dtype) + torch.einsum("di,...d,dj->...ij", W, observed, W) / SIGMA**2
    covariance = torch.linalg.inv(precision)
    centred = torch.where(observed.bool(), x - B, torch.zeros((), dtype=x.dtype))
    mean = torch.einsum("...ij,dj,...d->...i", covariance, W, centred) / SIGMA**2
    return mean, covariance


def exact_conditional(x: torch.Tensor = X, mask: torch.Tensor = MASK) -> tuple[torch.Tensor, torch.Tensor]:
    """p(x_U | x_O) of one row: mean (|U|,) and covariance (|U|, |U|)."""
    mean_z, covariance_z = posterior(x, mask)
    w_u, b_u = W[~mask], B[~mask]
    covariance = w_u @ covariance_z @ w_u.T + SIGMA**2 * torch.eye(len(b_u), dtype=DTYPE)
    return b_u + w_u @ mean_z, covariance


def exact_missing_nll(x: torch.Tensor = X, mask: torch.Tensor = MASK) -> float:
    """−log p(x_U | x_O) of one row."""
    mean, covariance = exact_conditional(x, mask)
    return -float(torch.distributions.MultivariateNormal(mean, covariance).log_prob(x[~mask]))


def prior_predictive() -> tuple[torch.Tensor, torch.Tensor]:
    """p(x): mean b, per-entry variance diag(W Wᵀ) + σ²."""
    return B, (W * W).sum(-1) + SIGMA**2


def assert_matches_exact(result, n_effective: float, n_se: float = 4.0) -> None:
    """Mean and variance of an imputation's missing entries (row 0, ``MASK``) within ``n_se`` Monte
    Carlo standard errors of the exact conditional. The mean's error is at most
    sqrt(Var[x_U | x_O] / n); the variance's is that of a sample variance of the latent part,
    sqrt(2 / n) · (Var[x_U | x_O] − σ²)."""
    mean, covariance = exact_conditional()
    variance = torch.diagonal(covariance)
    mean_se = (variance / n_effective).sqrt()
    variance_se = math.sqrt(2.0 / n_effective) * (variance - SIGMA**2)
    got_mean, got_variance = result.mean[0, ~MASK], result.variance[0, ~MASK]
    assert ((got_mean - mean).abs() < n_se * mean_se).all(), ((got_mean - mean) / mean_se)
    variance_error = (got_variance - variance) / variance_se
    assert (variance_error.abs() < n_se).all(), variance_error

