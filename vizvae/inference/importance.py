"""Importance-weighted estimators (Burda et al. 2016; Mattei's slides, seed 003).

IWAE_K(x) = log (1/K) Σ_k p(x_O, z_k) / q(z_k | x_O),  z_k ~ q(z | x_O).
It equals the ELBO in expectation at K = 1 and grows with K towards log p(x_O).
"""

from __future__ import annotations

import math

import torch

from vizvae.models.base import LatentVariableModel


def log_importance_weights(model: LatentVariableModel, x: torch.Tensor, mask: torch.Tensor | None,
                           n_importance: int, generator: torch.Generator | None = None,
                           proposal=None) -> torch.Tensor:
    """log w_k = log p(x_O, z_k) − log q(z_k | x_O): (K, batch). ``proposal`` defaults to the encoder."""
    proposal = model.encode(x, mask) if proposal is None else proposal
    z = proposal.rsample(n_importance, generator)  # (K, batch, latent)
    return model.log_joint(x, mask, z) - proposal.log_prob(z)


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
