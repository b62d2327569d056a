"""Importance-weighted estimators (Burda et al. 2016; Mattei's slides, seed 003).

IWAE_K(x) = log (1/K) Σ_k p(x_O, z_k) / q(z_k | x_O),  z_k ~ q(z | x_O).
It equals the ELBO in expectation at K = 1 and grows with K towards log p(x_O).
The same weights, normalised, give self-normalised importance sampling of p(z | x_O) and, by
resampling, SIR draws for imputation (``importance_resample``).
"""

from __future__ import annotations

import math

import torch

from vizvae.models.base import LatentVariableModel


def importance_draws(model: LatentVariableModel, x: torch.Tensor, mask: torch.Tensor | None,
                     n_importance: int, generator: torch.Generator | None = None,
                     proposal=None) -> tuple[torch.Tensor, torch.Tensor]:
    """z_k ~ q(z | x_O) (K, batch, latent) and log w_k = log p(x_O, z_k) − log q(z_k | x_O) (K, batch).
    ``proposal`` defaults to the encoder."""
    proposal = model.encode(x, mask) if proposal is None else proposal
    z = proposal.rsample(n_importance, generator)  # (K, batch, latent)
    return z, model.log_joint(x, mask, z) - proposal.log_prob(z)


def log_importance_weights(model: LatentVariableModel, x: torch.Tensor, mask: torch.Tensor | None,
                           n_importance: int, generator: torch.Generator | None = None,
                           proposal=None) -> torch.Tensor:
    """log w_k = log p(x_O, z_k) − log q(z_k | x_O): (K, batch). ``proposal`` defaults to the encoder."""
    return importance_draws(model, x, mask, n_importance, generator, proposal)[1]


@torch.no_grad()
def importance_resample(model: LatentVariableModel, x: torch.Tensor, mask: torch.Tensor | None,
                        n_proposals: int, n_samples: int, generator: torch.Generator | None = None,
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Self-normalised importance sampling of p(z | x_O) with the encoder as proposal, and sampling
    importance resampling (SIR) from it (Mattei's slides, MIWAE imputation).

    Returns the ``n_proposals`` draws (batch, L, latent), their normalised log-weights
    log w_l = log r_l − log Σ_j r_j with r_l = p(x_O | z_l) p(z_l) / q(z_l | x_O) (batch, L), and
    ``n_samples`` indices (batch, S) drawn with replacement in proportion to w — the SIR draws,
    approximately from p(z | x_O) when L is large.
    """
    z, log_w = importance_draws(model, x, mask, n_proposals, generator)
    z, log_w = z.transpose(0, 1), log_w.transpose(0, 1)  # (batch, L, ·)
    log_w = torch.nan_to_num(log_w, nan=-torch.inf, posinf=-torch.inf)  # an undefined weight counts as 0
    hopeless = ~torch.isfinite(log_w).any(-1, keepdim=True)  # no usable draw at all: weigh them equally
    log_w = torch.where(hopeless, torch.zeros_like(log_w), log_w)
    log_w = log_w - torch.logsumexp(log_w, dim=-1, keepdim=True)
    index = torch.multinomial(log_w.exp(), n_samples, replacement=True, generator=generator)
    return z, log_w, index


def effective_sample_size(log_weights: torch.Tensor) -> torch.Tensor:
    """Kish's ESS = 1 / Σ w_l² of normalised weights (..., L) -> (...): L for equal weights, 1 when
    one draw carries all the weight."""
    return 1.0 / (2.0 * log_weights).exp().sum(-1)


@torch.no_grad()
def iwae_bound(model: LatentVariableModel, x: torch.Tensor, mask: torch.Tensor | None = None,
               n_importance: int = 50, generator: torch.Generator | None = None,
               chunk_size: int = 500) -> torch.Tensor:
    """IWAE_K per data point: (batch,). Chunks the K samples so K = 5000 fits in memory."""
    proposal = model.encode(x, mask)
    running: torch.Tensor | None = None
    remaining = n_importance
    while remaining > 0:
        k = min(chunk_size, remaining)
        log_w = log_importance_weights(model, x, mask, k, generator, proposal)
        chunk = torch.logsumexp(log_w, dim=0)
        running = chunk if running is None else torch.logaddexp(running, chunk)
        remaining -= k
    assert running is not None
    return running - math.log(n_importance)


@torch.no_grad()
def evaluate_bounds(model: LatentVariableModel, x: torch.Tensor, mask: torch.Tensor | None = None,
                    ks: tuple[int, ...] = (1, 5, 50), seed: int = 0, batch_size: int = 250) -> dict[str, float]:
    """Dataset averages of the ELBO and IWAE_K, in nats per data point, batched over rows."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    totals = {"elbo": 0.0, **{f"iwae_{k}": 0.0 for k in ks}}
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        mb = None if mask is None else mask[start:start + batch_size]
        totals["elbo"] += float(model.elbo(xb, mb, generator=generator).elbo.sum())
        for k in ks:
            totals[f"iwae_{k}"] += float(iwae_bound(model, xb, mb, k, generator).sum())
    return {key: value / len(x) for key, value in totals.items()}
