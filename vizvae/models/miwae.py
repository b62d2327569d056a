"""MIWAE (Mattei & Frellsen 2019; Mattei's slides, seed 003): the one-layer VAE with a predictor,
trained on the missing-data importance-weighted bound

    L_K = E_{ε_1..K ~ q(ε | x_O, y_O)} log (1/K) Σ_k p(x_O, y_O, ε_k) / q(ε_k | x_O, y_O),

which equals the ELBO at K = 1 and grows with K towards log p(x_O, y_O). Its sampler is the
encoder with self-normalised importance weights w_k ∝ p(x_O, ε_k) / q(ε_k | x_O) (SNIS imputation,
as in the slides).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vizvae.models.base import ModelOutput, register_model
from vizvae.models.hierarchical import HierarchicalVAE, PartialVAEConfig, PosteriorDraws


@dataclass
class MIWAEConfig(PartialVAEConfig):
    n_importance: int = 5  # K of the training bound


@register_model
class MIWAE(HierarchicalVAE):
    model_key = "miwae"
    config_class = MIWAEConfig

    def log_importance_weights(self, x: torch.Tensor, mask: torch.Tensor | None, n_importance: int,
                               generator: torch.Generator | None = None, y: torch.Tensor | None = None,
                               y_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(ε_k (K, batch, latent), log w_k = log p(x_O, y_O, ε_k) − log q(ε_k | x_O, y_O) (K, batch)),
        reparameterised so the bound is differentiable."""
        posterior = self.encode(x, mask, y, y_mask)
        z = posterior.rsample(n_importance, generator)
        return z, self.log_joint(x, mask, z, y, y_mask) - posterior.log_prob(z)

    def iwae(self, x: torch.Tensor, mask: torch.Tensor | None, n_importance: int | None = None,
             generator: torch.Generator | None = None, y: torch.Tensor | None = None,
             y_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The MIWAE bound L_K per data point: (batch,)."""
        k = self.config.n_importance if n_importance is None else n_importance
        _, log_w = self.log_importance_weights(x, mask, k, generator, y, y_mask)
        return torch.logsumexp(log_w, dim=0) - math.log(k)

    def objective(self, x, mask, y=None, y_mask=None, generator=None, warmup=False) -> ModelOutput:
        """Stage-2 objective: maximise L_K (K = ``config.n_importance``)."""
        k = self.config.n_importance
        posterior = self.encode(x, mask, y, y_mask)
        z = posterior.rsample(k, generator)  # (K, batch, latent)
        log_x, log_y = self.log_likelihood_terms(x, mask, z, y, y_mask)
        log_joint = log_x + self.log_prior(z) + (0.0 if log_y is None else log_y)
        bound = torch.logsumexp(log_joint - posterior.log_prob(z), dim=0) - math.log(k)
        extras = {"miwae_bound": bound.detach()}
        if log_y is not None:
            extras["log_target"] = log_y.mean(0).detach()
        return ModelOutput(loss=-bound.mean(), elbo=bound.detach(), log_likelihood=log_x.mean(0).detach(),
                           kl=posterior.kl_standard_normal().detach(), extras=extras)

    @torch.no_grad()
    def posterior_draws(self, x, mask, n_samples, generator=None, y=None, y_mask=None) -> PosteriorDraws:
        """Encoder draws with self-normalised importance weights: (batch, k, latent), (batch, k)."""
        z, log_w = self.log_importance_weights(x, mask, n_samples, generator, y, y_mask)
        log_w = log_w - torch.logsumexp(log_w, dim=0, keepdim=True)
        return PosteriorDraws(z.transpose(0, 1), log_w.transpose(0, 1))
