"""The small distributions every model is built from: the diagonal-Gaussian posterior and
prior, and the decoder likelihoods (one likelihood module, shared by all models).

All are batched over arbitrary leading dimensions; ``log_prob`` of a likelihood returns one
value per entry so that masks can select observed entries (``masked_sum``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)
LOGVAR_RANGE = (-12.0, 8.0)  # keeps an encoder's σ in [2.5e-3, 55]: avoids inf/0 early in training


def randn_like(t: torch.Tensor, shape: tuple[int, ...] | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.randn(shape or t.shape, generator=generator, device=t.device, dtype=t.dtype)


@dataclass
class DiagonalGaussian:
    """N(mean, diag(std^2)) over the last dimension. ``mean``, ``std``: (..., dim)."""

    mean: torch.Tensor
    std: torch.Tensor

    def rsample(self, n: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised samples: (n, ..., dim), or (..., dim) when ``n`` is None."""
        shape = self.mean.shape if n is None else (n, *self.mean.shape)
        return self.mean + self.std * randn_like(self.mean, shape, generator)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; mean, std^2) summed over the last dim; z broadcasts against the mean."""
        return gaussian_log_prob(z, self.mean, self.std.log()).sum(-1)

    def kl_standard_normal(self) -> torch.Tensor:
        """Analytic KL(q || N(0, I)) = ½ Σ (μ² + σ² − 1 − log σ²)."""
        var = self.std.square()
        return 0.5 * (self.mean.square() + var - 1.0 - var.log()).sum(-1)

    def kl(self, other: "DiagonalGaussian") -> torch.Tensor:
        """Analytic KL(self || other) of two diagonal Gaussians, summed over the last dim."""
        ratio = (self.std / other.std).square()
        return 0.5 * (ratio + ((self.mean - other.mean) / other.std).square() - 1.0 - ratio.log()).sum(-1)

    def kl_per_dimension(self) -> torch.Tensor:
        var = self.std.square()
        return 0.5 * (self.mean.square() + var - 1.0 - var.log())

    def inflated(self, inflation: torch.Tensor | float) -> "DiagonalGaussian":
        return DiagonalGaussian(self.mean, self.std * inflation)


def gaussian_from_logvar(mean: torch.Tensor, logvar: torch.Tensor) -> DiagonalGaussian:
    """N(mean, diag exp(logvar)) with the log-variance clamped to ``LOGVAR_RANGE``: how every
    Gaussian encoder head turns its outputs into a distribution."""
    return DiagonalGaussian(mean, torch.exp(0.5 * logvar.clamp(*LOGVAR_RANGE)))


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(x; mean, exp(log_std)^2)."""
    return -0.5 * (((x - mean) * torch.exp(-log_std)).square() + LOG_2PI) - log_std


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dim."""
    return -0.5 * (z.square() + LOG_2PI).sum(-1)


class Likelihood:
    """p(x | z) with one factor per entry. ``log_prob(x)`` returns (..., features)."""

    mean: torch.Tensor

    @property
    def variance(self) -> torch.Tensor:
        """Var[x | z] per entry, (..., features): with ``mean``, what a predictive variance is built from."""
        raise NotImplementedError(f"{type(self).__name__} has no variance")

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError


class BernoulliLikelihood(Likelihood):
    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    @property
    def mean(self) -> torch.Tensor:  # type: ignore[override]
        return torch.sigmoid(self.logits)

    @property
    def variance(self) -> torch.Tensor:  # type: ignore[override]
        p = self.mean
        return p * (1.0 - p)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        # −BCE with logits is the stable log p for x in {0, 1}
        return -F.binary_cross_entropy_with_logits(self.logits, x.expand_as(self.logits), reduction="none")

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        u = torch.rand(self.logits.shape, generator=generator, device=self.logits.device)
        return (u < self.mean).to(self.logits.dtype)


class GaussianLikelihood(Likelihood):
    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor):
        self.mean = mean
        self.log_std = log_std.expand_as(mean)

    @property
    def std(self) -> torch.Tensor:
        return self.log_std.exp()

    @property
    def variance(self) -> torch.Tensor:  # type: ignore[override]
        return (2.0 * self.log_std).exp()

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return gaussian_log_prob(x, self.mean, self.log_std)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.mean + self.std * randn_like(self.mean, generator=generator)


def masked_sum(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Sum over the last dim of the entries the mask marks observed (True = observed)."""
    if mask is None:
        return values.sum(-1)
    return torch.where(mask, values, torch.zeros((), device=values.device, dtype=values.dtype)).sum(-1)
