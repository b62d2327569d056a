"""Posterior samplers: the part of a latent model that draws from its own posterior p(ε | x_O, y_O)
and names the objective the model is trained on (Stage 2).

Three parts, one per ``native_sampler``:

* ``EncoderSampler`` (``"encoder"``) — draws of the Gaussian encoder q(ε | x_O, y_O); trained on the
  ELBO (5.6), KL-balanced (5.7) during the warm-up.
* ``ImportanceSampler`` (``"importance"``, MIWAE: Mattei & Frellsen 2019; Mattei's slides, seed 003) —
  encoder draws with self-normalised importance weights w_k ∝ p(x_O, y_O, ε_k) / q(ε_k | x_O, y_O)
  (SNIS imputation), trained on the missing-data importance-weighted bound

      L_K = E_{ε_1..K ~ q(ε | x_O, y_O)} log (1/K) Σ_k p(x_O, y_O, ε_k) / q(ε_k | x_O, y_O),

  which equals the ELBO at K = 1 and grows with K towards log p(x_O, y_O).
* ``TunedHMCSampler`` (``"hmc"``, HMC-VAE and HH-VAE, thesis §5.2.5–5.2.6) — HMC with trained
  hyper-parameters, started at the inflated encoder Gaussian; trained on the ELBO like the encoder
  sampler, plus the Stage-3 losses of Algorithm 1. It owns an ``HMCHyperparameters`` module (step
  sizes φ ∈ R^{T×dim} and one inflation s_l per latent layer), which the model registers as ``hmc``
  so that it is saved with the weights and loads back with the checkpoint. Its target is the
  model's own unnormalised posterior over ε,

      log p*(ε) = log p(x_O | h_1) + log p(y_O | x̂, h_1) + Σ_l log N(ε_l; 0, I),

  i.e. ``log_joint``.

A sampler part holds no model: each call takes the model whose posterior it samples
(``EpsilonModel``: the members of ``vizvae.models.composed.ComposedVAE`` it uses).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, Sequence

import torch
from torch import nn

from vizvae.kernels.hmc import (
    HMCHyperparameters, HMCResult, LogDensityFn, init_step_sizes, layer_slices_from_sizes,
)
from vizvae.kernels.importance import log_mean_exp, self_normalised
from vizvae.kernels.stein import HMCTrainingLosses, hmc_training_losses
from vizvae.models.base import ModelOutput, PosteriorDraws
from vizvae.models.distributions import DiagonalGaussian, Likelihood, masked_sum

Tensor = torch.Tensor


class EpsilonModel(Protocol):
    """What a sampler part uses of the model it samples (an ε-space latent model)."""

    def encode(self, x: Tensor, mask: Tensor | None = None, y: Tensor | None = None,
               y_mask: Tensor | None = None) -> DiagonalGaussian: ...

    def elbo(self, x: Tensor, mask: Tensor | None = None, n_samples: int = 1, beta: float | None = None,
             generator: torch.Generator | None = None, y: Tensor | None = None, y_mask: Tensor | None = None,
             kl_balance: bool = False) -> ModelOutput: ...

    def log_likelihood_terms(self, x: Tensor, mask: Tensor | None, z: Tensor, y: Tensor | None = None,
                             y_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]: ...

    def log_joint(self, x: Tensor, mask: Tensor | None, z: Tensor, y: Tensor | None = None,
                  y_mask: Tensor | None = None) -> Tensor: ...

    def log_prior(self, z: Tensor) -> Tensor: ...

    def hidden(self, z: Tensor) -> Tensor: ...

    def observed_decoder(self, columns: Tensor) -> Any: ...


class PosteriorSampler:
    """A model's own posterior sampler and the Stage-2 objective that goes with it."""

    name: ClassVar[str] = ""

    def state(self) -> dict[str, nn.Module]:
        """Trained state the model saves with its weights, by attribute name (none by default)."""
        return {}

    def draws(self, model: EpsilonModel, x: Tensor, mask: Tensor | None, n_samples: int,
              generator: torch.Generator | None = None, y: Tensor | None = None,
              y_mask: Tensor | None = None) -> PosteriorDraws:
        raise NotImplementedError

    def objective(self, model: EpsilonModel, x: Tensor, mask: Tensor | None, y: Tensor | None = None,
                  y_mask: Tensor | None = None, generator: torch.Generator | None = None,
                  warmup: bool = False, kl_scale: float = 1.0) -> ModelOutput:
        """The ELBO (5.6), KL-balanced (5.7) during the warm-up, its KL term weighted by
        ``kl_scale`` · β in the loss (KL annealing: ``kl_scale`` rises from 0 to 1)."""
        return model.elbo(x, mask, generator=generator, y=y, y_mask=y_mask, kl_balance=warmup,
                          beta=kl_scale * model.kl_weight())


class EncoderSampler(PosteriorSampler):
    """Draws of the Gaussian encoder q(ε | x_O, y_O)."""

    name = "encoder"

    def draws(self, model, x, mask, n_samples, generator=None, y=None, y_mask=None) -> PosteriorDraws:
        posterior = model.encode(x, mask, y, y_mask)
        return PosteriorDraws(posterior.rsample(n_samples, generator).transpose(0, 1))  # (batch, k, latent)


class ImportanceSampler(PosteriorSampler):
    """Encoder draws with self-normalised importance weights; trained on L_K with K = ``n_importance``."""

    name = "importance"

    def __init__(self, n_importance: int):
        self.n_importance = n_importance

    def log_importance_weights(self, model: EpsilonModel, x: Tensor, mask: Tensor | None, n_importance: int,
                               generator: torch.Generator | None = None, y: Tensor | None = None,
                               y_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(ε_k (K, batch, latent), log w_k = log p(x_O, y_O, ε_k) − log q(ε_k | x_O, y_O) (K, batch)),
        reparameterised so the bound is differentiable."""
        posterior = model.encode(x, mask, y, y_mask)
        z = posterior.rsample(n_importance, generator)
        return z, model.log_joint(x, mask, z, y, y_mask) - posterior.log_prob(z)

    def bound(self, model: EpsilonModel, x: Tensor, mask: Tensor | None, n_importance: int | None = None,
              generator: torch.Generator | None = None, y: Tensor | None = None,
              y_mask: Tensor | None = None) -> Tensor:
        """L_K per data point: (batch,); K is ``n_importance`` (default: the training K)."""
        k = self.n_importance if n_importance is None else n_importance
        return log_mean_exp(self.log_importance_weights(model, x, mask, k, generator, y, y_mask)[1], dim=0)

    def objective(self, model, x, mask, y=None, y_mask=None, generator=None, warmup=False,
                  kl_scale=1.0) -> ModelOutput:
        """Maximise L_K, reported in ``extras["miwae_bound"]``; ``elbo`` is the ELBO estimated from
        the same K draws. (L_K has no separate KL term: ``kl_scale`` does not apply.)"""
        posterior = model.encode(x, mask, y, y_mask)
        z = posterior.rsample(self.n_importance, generator)  # (K, batch, latent)
        log_x, log_y = model.log_likelihood_terms(x, mask, z, y, y_mask)
        log_joint = log_x + model.log_prior(z) + (0.0 if log_y is None else log_y)  # (K, batch)
        bound = log_mean_exp(log_joint - posterior.log_prob(z), dim=0)
        fit = log_x if log_y is None else log_x + log_y
        kl = posterior.kl_standard_normal()
        extras = {"miwae_bound": bound.detach()}
        if log_y is not None:
            extras["log_target"] = log_y.mean(0).detach()
        return ModelOutput(loss=-bound.mean(), elbo=(fit.mean(0) - kl).detach(),
                           log_likelihood=log_x.mean(0).detach(), kl=kl.detach(), extras=extras)

    @torch.no_grad()
    def draws(self, model, x, mask, n_samples, generator=None, y=None, y_mask=None) -> PosteriorDraws:
        """Encoder draws with self-normalised importance weights: (batch, k, latent), (batch, k)."""
        z, log_w = self.log_importance_weights(model, x, mask, n_samples, generator, y, y_mask)
        return PosteriorDraws(z.transpose(0, 1), self_normalised(log_w.transpose(0, 1)))


class TunedHMCSampler(PosteriorSampler):
    """HMC from N(μ, s_l·σ) of the encoder with trained step sizes and inflations (``hmc``)."""

    name = "hmc"

    def __init__(self, latent_dims: Sequence[int], n_transitions: int, n_leapfrog: int,
                 step_size_low: float, step_size_high: float, initial_inflation: float, sksd_chains: int,
                 hmc_seed: int):
        dim = sum(latent_dims)
        # a private generator: drawing φ must not move the global RNG, so the model's networks are
        # initialised exactly like the Gaussian counterpart's with the same seed
        self._initial = (n_transitions, dim, step_size_low, step_size_high, hmc_seed)
        self.hmc = HMCHyperparameters(dim, n_transitions, n_leapfrog, layer_slices=layer_slices_from_sizes(latent_dims),
                                      step_sizes=self.initial_step_sizes(), inflation=initial_inflation)
        self.sksd_chains = sksd_chains  # chains per data point in Stage 3 (§5.4.1)

    def initial_step_sizes(self) -> Tensor:
        """φ as it was before training (T, dim): U(low, high) drawn again from the model's ``hmc_seed``."""
        n_transitions, dim, low, high, seed = self._initial
        return init_step_sizes(n_transitions, dim, low, high, generator=torch.Generator().manual_seed(seed))

    def state(self) -> dict[str, nn.Module]:
        return {"hmc": self.hmc}

    def logdensity(self, model: EpsilonModel, x: Tensor, mask: Tensor | None, y: Tensor | None = None,
                   y_mask: Tensor | None = None) -> LogDensityFn:
        """ε (batch, chains, latent) -> log p*(ε) (batch, chains) for the rows of ``x`` (batch, features).

        Built once per call, outside the leapfrog loop: when no target is observed the density only
        needs the pixels observed in some row, so the decoder computes just those (``observed_decoder``)."""
        target_observed = y is not None and (y_mask is None or bool(y_mask.any()))
        if mask is not None and not target_observed:
            columns = mask.any(0).nonzero().squeeze(-1)  # observed in at least one row
            decode = model.observed_decoder(columns) if len(columns) < 0.9 * mask.shape[-1] else None
            if decode is not None:
                return _observed_logdensity(model, decode, x[:, columns], mask[:, columns])
        x_rows = x.unsqueeze(-2)  # (batch, 1, features): broadcasts over the chains
        mask_rows = None if mask is None else mask.unsqueeze(-2)
        y_rows = None if y is None else y.unsqueeze(-1)
        y_mask_rows = None if y_mask is None else y_mask.unsqueeze(-1)

        def logdensity(eps: Tensor) -> Tensor:
            return model.log_joint(x_rows, mask_rows, eps, y_rows, y_mask_rows)

        return logdensity

    def samples(self, model: EpsilonModel, x: Tensor, mask: Tensor | None, y: Tensor | None = None,
                y_mask: Tensor | None = None, n_chains: int = 30, generator: torch.Generator | None = None,
                record_chain: bool = False) -> HMCResult:
        """HMC from N(μ, s_l·σ) of the encoder, target p(ε | x_O, y_O): chains (batch, n_chains, latent).

        ``result.samples`` are draws from q^(T); ``record_chain`` keeps all T+1 positions."""
        with torch.no_grad():
            proposal = model.encode(x, mask, y, y_mask)
        return self.hmc.sample(self.logdensity(model, x, mask, y, y_mask), proposal.mean, proposal.std,
                               n_chains, generator=generator, record_chain=record_chain)

    def draws(self, model, x, mask, n_samples, generator=None, y=None, y_mask=None) -> PosteriorDraws:
        """The final states of ``n_samples`` HMC chains per row."""
        return PosteriorDraws(self.samples(model, x, mask, y, y_mask, n_samples, generator).samples)

    def losses(self, model: EpsilonModel, x: Tensor, mask: Tensor | None, y: Tensor | None = None,
               y_mask: Tensor | None = None, n_chains: int | None = None,
               generator: torch.Generator | None = None) -> HMCTrainingLosses:
        """Stage-3 losses from one differentiable HMC run (Algorithm 1): ``hmc_objective`` (5.9), to
        maximise w.r.t. the generative parameters and the step sizes, and ``sksd`` (5.10), to minimise
        w.r.t. the inflation. The encoder's μ, σ are detached: it is trained by the ELBO alone."""
        with torch.no_grad():
            proposal = model.encode(x, mask, y, y_mask)
        return hmc_training_losses(self.hmc, self.logdensity(model, x, mask, y, y_mask), proposal.mean,
                                   proposal.std, n_chains=n_chains or self.sksd_chains, generator=generator)


def _observed_logdensity(model: EpsilonModel, decode: Any, x_observed: Tensor, mask_observed: Tensor) -> LogDensityFn:
    """log p(x_O | h_1(ε)) + log p(ε) from the decoder outputs of the observed columns only."""
    x_rows, mask_rows = x_observed.unsqueeze(-2), mask_observed.unsqueeze(-2)  # (batch, 1, |columns|)
    if bool(mask_observed.all()):  # one row (or rows observing the same pixels): no entry to mask out
        mask_rows = None

    def logdensity(eps: Tensor) -> Tensor:
        likelihood: Likelihood = decode(model.hidden(eps))
        return masked_sum(likelihood.log_prob(x_rows), mask_rows) + model.log_prior(eps)

    return logdensity
