"""HMC-VAE and HH-VAE (thesis §5.2.5–5.2.6): a VAE / H-VAE whose posterior samples come from HMC
with trained hyper-parameters, started at the inflated encoder Gaussian.

The model owns an ``HMCHyperparameters`` module (step sizes φ ∈ R^{T×dim} and one inflation s_l
per latent layer), so they are saved with the weights and load back with the checkpoint. The
target is the model's own unnormalised posterior over ε,

    log p*(ε) = log p(x_O | h_1) + log p(y_O | x̂, h_1) + Σ_l log N(ε_l; 0, I),

i.e. ``log_joint``. ``posterior_samples`` runs T transitions of LF leapfrog steps on
(batch, chains, latent) in one tensor; ``hmc_losses`` gives the two Stage-3 losses of
Algorithm 1 (HMC objective 5.9 and SKSD 5.10) from one differentiable run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vizvae.inference.hmc import HMCHyperparameters, HMCResult, LogDensityFn, init_step_sizes
from vizvae.inference.stein import HMCTrainingLosses, hmc_training_losses
from vizvae.models.base import register_model
from vizvae.models.distributions import masked_sum
from vizvae.models.hierarchical import HierarchicalVAE, HierarchicalVAEConfig, PosteriorDraws


@dataclass
class HHVAEConfig(HierarchicalVAEConfig):
    n_transitions: int = 10  # T
    n_leapfrog: int = 5  # LF
    step_size_low: float = 0.02  # φ ~ U(low, high) at initialisation (authors' code)
    step_size_high: float = 0.05
    initial_inflation: float = 1.0
    sksd_chains: int = 30  # chains per data point in Stage 3 (§5.4.1)
    hmc_seed: int = 0  # seeds the initial step sizes only, so the networks' init matches the Gaussian model's


@register_model
class HHVAE(HierarchicalVAE):
    """H-VAE + HMC over ε (key ``hhvae``)."""

    model_key = "hhvae"
    config_class = HHVAEConfig

    def __init__(self, config: HHVAEConfig):
        super().__init__(config)
        # a private generator: drawing φ must not move the global RNG, so the networks above are
        # initialised exactly like the Gaussian counterpart's with the same seed
        generator = torch.Generator().manual_seed(config.hmc_seed)
        step_sizes = init_step_sizes(config.n_transitions, self.latent_dim, config.step_size_low,
                                     config.step_size_high, generator=generator)
        self.hmc = HMCHyperparameters(self.latent_dim, config.n_transitions, config.n_leapfrog,
                                      layer_slices=self.layer_slices(), step_sizes=step_sizes,
                                      inflation=config.initial_inflation)

    def posterior_logdensity(self, x: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor | None = None,
                             y_mask: torch.Tensor | None = None) -> LogDensityFn:
        """ε (batch, chains, latent) -> log p*(ε) (batch, chains) for the rows of ``x`` (batch, features).

        Built once per call, outside the leapfrog loop: when no target is observed the density only
        needs the pixels observed in some row, so the decoder computes just those (``observed_decoder``)."""
        target_observed = y is not None and (y_mask is None or bool(y_mask.any()))
        if mask is not None and not target_observed:
            columns = mask.any(0).nonzero().squeeze(-1)  # observed in at least one row
            decode = self.observed_decoder(columns) if len(columns) < 0.9 * mask.shape[-1] else None
            if decode is not None:
                x_observed = x[:, columns].unsqueeze(-2)  # (batch, 1, |columns|)
                mask_observed = mask[:, columns].unsqueeze(-2)

                def logdensity_observed(eps: torch.Tensor) -> torch.Tensor:
                    log_x = masked_sum(decode(self.transform(eps)).log_prob(x_observed), mask_observed)
                    return log_x + self.log_prior(eps)

                return logdensity_observed
        x_rows = x.unsqueeze(-2)  # (batch, 1, features): broadcasts over the chains
        mask_rows = None if mask is None else mask.unsqueeze(-2)
        y_rows = None if y is None else y.unsqueeze(-1)
        y_mask_rows = None if y_mask is None else y_mask.unsqueeze(-1)

        def logdensity(eps: torch.Tensor) -> torch.Tensor:
            return self.log_joint(x_rows, mask_rows, eps, y_rows, y_mask_rows)

        return logdensity

    def posterior_samples(self, x: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor | None = None,
                          y_mask: torch.Tensor | None = None, n_chains: int = 30,
                          generator: torch.Generator | None = None, record_chain: bool = False) -> HMCResult:
        """HMC from N(μ, s_l·σ) of the encoder, target p(ε | x_O, y_O): chains (batch, n_chains, latent).

        ``result.samples`` are draws from q^(T); ``record_chain`` keeps all T+1 positions."""
        with torch.no_grad():
            proposal = self.encode(x, mask, y, y_mask)
        return self.hmc.sample(self.posterior_logdensity(x, mask, y, y_mask), proposal.mean, proposal.std,
                               n_chains, generator=generator, record_chain=record_chain)

    def posterior_draws(self, x, mask, n_samples, generator=None, y=None, y_mask=None) -> PosteriorDraws:
        """This model's own sampler: the final states of ``n_samples`` HMC chains per row."""
        return PosteriorDraws(self.posterior_samples(x, mask, y, y_mask, n_samples, generator).samples)

    def hmc_losses(self, x: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor | None = None,
                   y_mask: torch.Tensor | None = None, n_chains: int | None = None,
                   generator: torch.Generator | None = None) -> HMCTrainingLosses:
        """Stage-3 losses from one differentiable HMC run (Algorithm 1): ``hmc_objective`` (5.9), to
        maximise w.r.t. the generative parameters and the step sizes, and ``sksd`` (5.10), to minimise
        w.r.t. the inflation. The encoder's μ, σ are detached: it is trained by the ELBO alone."""
        with torch.no_grad():
            proposal = self.encode(x, mask, y, y_mask)
        return hmc_training_losses(self.hmc, self.posterior_logdensity(x, mask, y, y_mask), proposal.mean,
                                   proposal.std, n_chains=n_chains or self.config.sksd_chains, generator=generator)


@dataclass
class HMCVAEConfig(HHVAEConfig):
    latent_dims: tuple[int, ...] = (20,)


@register_model
class HMCVAE(HHVAE):
    """One-layer VAE + HMC (key ``hmcvae``): HH-VAE at L = 1."""

    model_key = "hmcvae"
    config_class = HMCVAEConfig
