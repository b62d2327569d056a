"""Importance sampling of a model's posterior with its encoder as proposal (Burda et al. 2016;
Mattei's slides, seed 003).

IWAE_K(x) = log (1/K) Σ_k p(x_O, z_k) / q(z_k | x_O),  z_k ~ q(z | x_O).
It equals the ELBO in expectation at K = 1 and grows with K towards log p(x_O).
The same weights, normalised, give self-normalised importance sampling of p(z | x_O) and, by
resampling, SIR draws for imputation (``importance_resample``). The estimators themselves
(log-mean-exp, self-normalisation, Kish's ESS) live in ``vizvae.kernels.importance``.
"""

from __future__ import annotations

import torch

from vizvae.kernels.importance import log_mean_exp, self_normalised
from vizvae.models.base import LatentVariableModel

MIN_ESS = 10.0  # fewer effective draws: an estimate that a single weight can move


def ess_warning(ess: float, n_proposals: int) -> str | None:
    """Why self-normalised importance sampling cannot be trusted, with the numbers, or None when it can.

    Kish's ESS (Σ w)² / Σ w² counts the draws that carry the weight; below ``MIN_ESS`` the moments,
    the NLL and the SIR samples rest on a handful of encoder draws (the resamples are copies of
    them), however many proposals were made."""
    if ess >= MIN_ESS:
        return None
    return (f"Importance sampling kept an effective sample size of {ess:.1f} of {n_proposals} proposals (fewer "
            f"than {MIN_ESS:g}): its scores and samples rest on about {max(1, round(ess))} encoder draw(s), so they "
            "cannot be trusted. The encoder is too far from this model's posterior to serve as a proposal; HMC, "
            "which moves its chains by gradient steps, does not need it to be close.")


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
    z, log_w = z.transpose(0, 1), self_normalised(log_w.transpose(0, 1))  # (batch, L, ·)
    index = torch.multinomial(log_w.exp(), n_samples, replacement=True, generator=generator)
    return z, log_w, index


@torch.no_grad()
def iwae_bound(model: LatentVariableModel, x: torch.Tensor, mask: torch.Tensor | None = None,
               n_importance: int = 50, generator: torch.Generator | None = None,
               chunk_size: int = 500) -> torch.Tensor:
    """IWAE_K per data point: (batch,). Chunks the K samples so K = 5000 fits in memory."""
    proposal = model.encode(x, mask)
    chunks = [log_importance_weights(model, x, mask, min(chunk_size, n_importance - start), generator, proposal)
              for start in range(0, n_importance, chunk_size)]
    return log_mean_exp(torch.cat(chunks), dim=0)


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
