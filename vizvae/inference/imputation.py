"""Imputation and prediction from posterior draws (thesis eq. 5.14; Mattei's SNIS imputation).

Given draws ε_1..k from a model's own sampler for p(ε | x_O) — encoder samples, importance-weighted
encoder samples (MIWAE) or HMC chains — with normalised weights w_i (1/k when unweighted):

    log p(x_U | x_O) ≈ log Σ_i w_i p(x_U | ε_i)                (5.14)
    p(y | x_O)       ≈ Σ_i w_i p(y | x̂_i, h_1(ε_i))   (a label's probabilities, or a real target's density)

Both are batched over rows: ``x``, ``mask`` (batch, features); draws (batch, k, latent).
"""

from __future__ import annotations

import math

import torch

from vizvae.models.distributions import masked_sum


def _log_weights(samples: torch.Tensor, log_weights: torch.Tensor | None) -> torch.Tensor:
    if log_weights is not None:
        return log_weights
    k = samples.shape[-2]
    return torch.full(samples.shape[:-1], -math.log(k), dtype=samples.dtype, device=samples.device)


def resampled_draws(draws, generator: torch.Generator | None = None) -> torch.Tensor:
    """Equally weighted samples (batch, k, latent) from a sampler's ``PosteriorDraws``: importance-weighted
    draws are resampled by their weights (sampling importance resampling), others pass through."""
    if draws.log_weights is None:
        return draws.samples
    k = draws.samples.shape[-2]
    index = torch.multinomial(draws.log_weights.exp(), k, replacement=True, generator=generator)  # (batch, k)
    return draws.samples.gather(1, index.unsqueeze(-1).expand(-1, -1, draws.samples.shape[-1]))


@torch.no_grad()
def missing_log_likelihood(model, x: torch.Tensor, mask: torch.Tensor, samples: torch.Tensor,
                           log_weights: torch.Tensor | None = None) -> torch.Tensor:
    """log p(x_U | x_O) estimated by eq. (5.14): (batch,), summed over the missing entries."""
    log_p = masked_sum(model.decode(samples).log_prob(x.unsqueeze(-2)), ~mask.unsqueeze(-2))  # (batch, k)
    return torch.logsumexp(_log_weights(samples, log_weights) + log_p, dim=-1)


@torch.no_grad()
def predictive_target(model, x: torch.Tensor, mask: torch.Tensor, samples: torch.Tensor,
                      log_weights: torch.Tensor | None = None) -> torch.Tensor:
    """p(y | x_O) as a mixture over the draws: (batch, classes) (or (batch, 1) predictive means)."""
    per_draw = model.predict_y(x.unsqueeze(-2), mask.unsqueeze(-2), samples)  # (batch, k, classes)
    weights = _log_weights(samples, log_weights).exp().unsqueeze(-1)
    return (weights * per_draw).sum(-2)


@torch.no_grad()
def target_log_likelihood(model, x: torch.Tensor, mask: torch.Tensor, y: torch.Tensor, samples: torch.Tensor,
                          log_weights: torch.Tensor | None = None) -> torch.Tensor:
    """log p(y | x_O) ≈ log Σ_i w_i p(y | x̂_i, h_1(ε_i)) for a label or a real target: (batch,)."""
    _, log_y = model.log_likelihood_terms(x.unsqueeze(-2), mask.unsqueeze(-2), samples, y.unsqueeze(-1))
    return torch.logsumexp(_log_weights(samples, log_weights) + log_y, dim=-1)
