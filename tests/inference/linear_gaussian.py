"""A latent-variable model whose evidence and posterior are known in closed form, for the
estimators of ``vizvae.inference.posterior`` and ``gaps``.

p(z) = N(0, I_2), p(x | z) = N(W z + b, σ² I). Then p(x_O) = N(x_O; b_O, W_O W_Oᵀ + σ² I) and
p(z | x_O) = N(Σ W_Oᵀ(x_O − b_O)/σ², Σ) with Σ = (I + W_Oᵀ W_O / σ²)⁻¹. The columns of W are
orthogonal — also after dropping feature 2 — so Σ is diagonal: the posterior is *in* the
diagonal-Gaussian family and the approximation gap is exactly 0, while an encoder that returns
another Gaussian has amortisation gap KL(q_φ ‖ p(z | x_O)).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vizvae.models.base import LatentVariableModel, ModelConfig
from vizvae.models.distributions import DiagonalGaussian, GaussianLikelihood

DTYPE = torch.float64
W = torch.tensor([[1.0, 0.6], [1.0, -0.6], [0.0, 1.2]], dtype=DTYPE)  # columns orthogonal
B = torch.tensor([0.2, -0.1, 0.3], dtype=DTYPE)
SIGMA = 0.5
X = torch.tensor([1.0, 0.5, -0.4], dtype=DTYPE)
MASK = torch.tensor([True, True, False])


class LinearGaussianModel(LatentVariableModel):
    """The model above with a fixed (possibly wrong) Gaussian "encoder"."""

    def __init__(self, encoder_mean: torch.Tensor, encoder_std: torch.Tensor):
        super().__init__(ModelConfig())
        self.weight = nn.Parameter(W.clone(), requires_grad=False)
        self.bias = nn.Parameter(B.clone(), requires_grad=False)
        self.encoder_mean = nn.Parameter(torch.as_tensor(encoder_mean, dtype=DTYPE), requires_grad=False)
        self.encoder_std = nn.Parameter(torch.as_tensor(encoder_std, dtype=DTYPE), requires_grad=False)

    @property
    def latent_dims(self) -> list[int]:
        return [2]

    def encode(self, x, mask=None):
        shape = (*x.shape[:-1], 2)
        return DiagonalGaussian(self.encoder_mean.expand(shape), self.encoder_std.expand(shape))

    def decode(self, z):
        mean = z @ self.weight.T + self.bias
        return GaussianLikelihood(mean, torch.full_like(mean, math.log(SIGMA)))


def observed(mask: torch.Tensor | None):
    keep = torch.ones(len(X), dtype=torch.bool) if mask is None else mask
    return X[keep], W[keep], B[keep]


def log_evidence(mask: torch.Tensor | None = None) -> float:
    x, w, b = observed(mask)
    covariance = w @ w.T + SIGMA**2 * torch.eye(len(x), dtype=DTYPE)
    return float(torch.distributions.MultivariateNormal(b, covariance).log_prob(x))


def exact_posterior(mask: torch.Tensor | None = None) -> DiagonalGaussian:
    x, w, b = observed(mask)
    covariance = torch.linalg.inv(torch.eye(2, dtype=DTYPE) + w.T @ w / SIGMA**2)
    assert torch.allclose(covariance, torch.diag(torch.diagonal(covariance)))  # diagonal by construction
    mean = covariance @ w.T @ (x - b) / SIGMA**2
    return DiagonalGaussian(mean, torch.diagonal(covariance).sqrt())


def kl_diagonal(q: DiagonalGaussian, p: DiagonalGaussian) -> float:
    """KL(q ‖ p) of two diagonal Gaussians, analytic."""
    return float(q.kl(p))


def wrong_encoder_model(mask: torch.Tensor | None = None) -> LinearGaussianModel:
    """An encoder off the posterior: shifted and wider (so importance weights stay bounded)."""
    posterior = exact_posterior(mask)
    return LinearGaussianModel(posterior.mean + torch.tensor([0.4, -0.3], dtype=DTYPE),
                               posterior.std * torch.tensor([1.6, 1.3], dtype=DTYPE))


def exact_encoder_model(mask: torch.Tensor | None = None) -> LinearGaussianModel:
    posterior = exact_posterior(mask)
    return LinearGaussianModel(posterior.mean, posterior.std)
