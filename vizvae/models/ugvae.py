"""UG-VAE: unsupervised global and local latent variables (Peis et al. 2023; thesis Ch. 4).

One *group* is one mini-batch X = {x_1..x_B} (random batches in training, no supervision).

Generative model (eqs 4.1–4.4), for one group:
    β ~ N(0, I_g)                                   global, shared by the group
    d_i ~ Cat(1/K)                                  one cluster per sample
    z_i | d_i, β ~ N(μ_z^(d_i)(β), Σ_z^(d_i)(β))    one small network per cluster
    x_i | z_i, β ~ p(x | decoder([z_i, β]))

Inference (eqs 4.5–4.9):
    q(z_i | x_i) = N(μ_φ(h(x_i)), Σ_φ(h(x_i)))      h: the shared pre-encoder
    q(d_i | z_i) = Cat(π_φ(z_i))
    q(β | X, Z) ∝ Π_i N(μ_i, Σ_i), (μ_i, Σ_i) = φ_β([h(x_i), π_φ(z_i)])
      a product of Gaussians: Λ_β = Σ_i Λ_i, μ_β = Λ_β⁻¹ Σ_i Λ_i μ_i  (eq. 4.9)

ELBO (eqs 4.10–4.11), derived rather than transcribed. With z_i ~ q(z_i|x_i) and
β ~ q(β|X,Z) reparameterised and d summed out analytically,

    L(X) = Σ_i { log p(x_i | z_i, β)
                 + Σ_d q(d|z_i) [log p(z_i | d, β) + log p(d) − log q(d|z_i)]
                 + H[q(z_i | x_i)] }
           − KL(q(β | X, Z) || N(0, I)).

The thesis writes the z term as E_q(d)[KL(q(z|x) || p(z|d,β))] with an analytic Gaussian KL;
because q(d|z) depends on the sampled z, that mixes a Monte Carlo and an analytic expectation
and is not the ELBO. Here the d-weighted log p(z|d,β) is taken at the sampled z (unbiased) and
only the entropy of q(z|x) is analytic. Per sample we report the local terms plus KL_β / B.

Baselines from the same parts: ``MLVAE`` (K = 1: a unimodal p(z|β), ML-VAE trained on random
batches) and ``GMVAE`` (no global variable: p(z|d) with learned per-cluster constants).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from vizvae.kernels.importance import log_mean_exp
from vizvae.models.base import DataConfig, ModelOutput, VizvaeModel, register_model
from vizvae.models.capabilities import GroupModel
from vizvae.models.distributions import (
    LOG_2PI, LOGVAR_RANGE, DiagonalGaussian, Likelihood, gaussian_from_logvar, masked_sum, standard_normal_log_prob,
)
from vizvae.models.networks import LikelihoodHead, mlp


@dataclass
class UGVAEConfig(DataConfig):
    latent_dim: int = 20  # dim_z, the local variable
    global_dim: int = 20  # dim_β, the global variable (0: no global variable, a GMVAE)
    clusters: int = 10  # K (1: ML-VAE)
    hidden_dim: int = 256  # App. A, Table A.1 (MNIST)
    likelihood: str = "bernoulli"  # "bernoulli" | "gaussian" (σ_x = 0.2 in the authors' code)
    sigma_mode: str = "fixed"
    sigma: float = 0.2
    group_size: int = 128  # B: the group the model was trained on; groups for sampling from the prior


def product_of_gaussians(mean: torch.Tensor, logvar: torch.Tensor, dim: int = -2) -> DiagonalGaussian:
    """The normalised product Π_i N(μ_i, diag σ_i²) over ``dim`` (eq. 4.9):
    Λ = Σ_i Λ_i and μ = Λ⁻¹ Σ_i Λ_i μ_i, with diagonal precisions Λ_i = diag(σ_i⁻²).

    Every factor adds precision, so the global posterior tightens as a group grows and each
    sample pulls the mean in proportion to how sure it is."""
    precision = torch.exp(-logvar)  # (..., B, g)
    total = precision.sum(dim)  # (..., g)
    mean = (precision * mean).sum(dim) / total
    return DiagonalGaussian(mean, total.rsqrt())


def gaussian_entropy(q: DiagonalGaussian) -> torch.Tensor:
    """H[N(μ, diag σ²)] = Σ ½(1 + log 2π) + log σ, summed over the last dim."""
    return (0.5 * (1.0 + LOG_2PI) + q.std.log()).sum(-1)


def diagonal_gaussian(params: torch.Tensor, dim: int) -> DiagonalGaussian:
    """(…, 2·dim) network output -> N(first half, diag exp(second half)): mean and log-variance."""
    return gaussian_from_logvar(params[..., :dim], params[..., dim:])


class ClusterPriors(nn.Module):
    """p(z | d, β) = N(μ_z^(d)(β), Σ_z^(d)(β)) for every cluster d (eq. 4.3).

    K independent networks g → hidden → 2·dim_z (ReLU); their weights are stacked along a
    leading cluster axis so that all K run in one einsum. With g = 0 (GMVAE) each network is a
    learned constant."""

    def __init__(self, clusters: int, global_dim: int, hidden: int, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.w1 = nn.Parameter(torch.empty(clusters, global_dim, hidden))
        self.b1 = nn.Parameter(torch.empty(clusters, hidden))
        self.w2 = nn.Parameter(torch.empty(clusters, hidden, 2 * latent_dim))
        self.b2 = nn.Parameter(torch.empty(clusters, 2 * latent_dim))
        # nn.Linear's default: U(−1/√fan_in, 1/√fan_in); a constant input (g = 0) gets bound 1
        for weight, bias, fan_in in ((self.w1, self.b1, global_dim), (self.w2, self.b2, hidden)):
            bound = 1.0 / math.sqrt(fan_in) if fan_in else 1.0
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)

    def forward(self, beta: torch.Tensor) -> DiagonalGaussian:
        """β (..., g) -> a Gaussian with mean and std (..., K, dim_z)."""
        hidden = torch.relu(torch.einsum("...g,kgh->...kh", beta, self.w1) + self.b1)
        out = torch.einsum("...kh,kho->...ko", hidden, self.w2) + self.b2
        return diagonal_gaussian(out, self.latent_dim)


@dataclass
class GroupInference:
    """Everything the variational family says about one group (or a stack of groups)."""

    local: DiagonalGaussian  # q(z | x): (..., B, dim_z)
    z: torch.Tensor  # (S, ..., B, dim_z) the z the rest is conditioned on
    cluster_logits: torch.Tensor  # (S, ..., B, K) of q(d | z)
    global_posterior: DiagonalGaussian  # q(β | X, Z): (S, ..., g)

    @property
    def cluster_probs(self) -> torch.Tensor:
        return self.cluster_logits.softmax(-1)


@register_model
class UGVAE(VizvaeModel, GroupModel):
    """UG-VAE. ``latent_dims`` = [dim_z, dim_β]: the decoder's input is [z, β] (eq. 4.2).

    A group model, not a per-row one: its joint is over a group (X, Z, d, β), so it has no per-row
    ``log_joint``; ``decode`` takes one row's [z, β] and ``decode_group`` a group's z with its β."""

    model_key = "ugvae"
    config_class = UGVAEConfig
    native_sampler = "encoder"

    def __init__(self, config: UGVAEConfig):
        super().__init__(config)
        if config.clusters < 1 or config.latent_dim < 1 or config.global_dim < 0:
            raise ValueError("UG-VAE needs clusters ≥ 1, latent_dim ≥ 1 and global_dim ≥ 0")
        n, hidden, dz, g, k = (config.n_features, config.hidden_dim, config.latent_dim, config.global_dim,
                               config.clusters)
        self.pre_encoder = mlp([n, hidden], final_activation=True)  # h(x): 784 → 256, ReLU
        self.local_head = nn.Linear(hidden, 2 * dz)  # φ_z: q(z | x)
        self.cluster_head = nn.Sequential(nn.Linear(dz, hidden), nn.Tanh(), nn.Linear(hidden, k))  # φ_d: q(d | z)
        # φ_β: one Gaussian factor of q(β | X, Z) per sample (none without a global variable)
        self.global_head = nn.Linear(hidden + k, 2 * g) if g else None
        self.cluster_priors = ClusterPriors(k, g, hidden, dz)  # θ_z^(d)
        self.likelihood_head = LikelihoodHead(
            config.likelihood, n, config.sigma_mode, config.sigma,
            mean_activation="sigmoid" if config.likelihood == "gaussian" else None,
        )
        self.decoder = mlp([dz + g, hidden, n * self.likelihood_head.n_outputs_per_feature])  # θ_x

    # -- shape ---------------------------------------------------------------------------------------
    @property
    def latent_dims(self) -> list[int]:
        return [self.config.latent_dim] + ([self.config.global_dim] if self.config.global_dim else [])

    @property
    def local_dim(self) -> int:
        return self.config.latent_dim

    @property
    def global_dim(self) -> int:
        return self.config.global_dim

    @property
    def clusters(self) -> int:
        return self.config.clusters

    # -- the parts -----------------------------------------------------------------------------------
    def _features(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is not None:  # missing entries are zero-filled at the encoder input
            x = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
        return self.pre_encoder(x)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(z | x), the local posterior (eq. 4.6): (..., dim_z)."""
        return diagonal_gaussian(self.local_head(self._features(x, mask)), self.local_dim)

    def cluster_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.cluster_head(z)

    def cluster_probs(self, z: torch.Tensor) -> torch.Tensor:
        """q(d | z) (eq. 4.7): z (..., dim_z) -> (..., K)."""
        return self.cluster_logits(z).softmax(-1)

    def cluster_prior(self, beta: torch.Tensor) -> DiagonalGaussian:
        """p(z | d, β) for every d: β (..., g) -> mean μ_z^(d)(β) and std, (..., K, dim_z)."""
        return self.cluster_priors(beta)

    def cluster_log_prob(self, z: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """log p(z_i | d, β) for every cluster d: z (..., B, dim_z) and the group's β (..., g) -> (..., B, K)."""
        prior = self.cluster_prior(beta)  # (..., K, dz)
        component = DiagonalGaussian(prior.mean[..., None, :, :], prior.std[..., None, :, :])  # (..., 1, K, dz)
        return component.log_prob(z[..., None, :])

    def _global_factors(self, features: torch.Tensor, cluster_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample Gaussian factors of q(β | X, Z): (mean, logvar), each (..., B, g)."""
        if self.global_head is None:  # GMVAE: an empty β
            empty = cluster_probs.new_zeros(*cluster_probs.shape[:-1], 0)
            return empty, empty
        out = self.global_head(torch.cat([features.expand(*cluster_probs.shape[:-1], -1), cluster_probs], -1))
        g = self.global_dim
        return out[..., :g], out[..., g:].clamp(*LOGVAR_RANGE)

    def infer(self, x: torch.Tensor, mask: torch.Tensor | None = None, n_samples: int | None = 1,
              generator: torch.Generator | None = None) -> GroupInference:
        """q(Z | X) q(d | Z) q(β | X, Z) of the group(s) x (..., B, features). ``n_samples`` draws
        of Z (reparameterised); None conditions on the encoder means instead (deterministic)."""
        features = self._features(x, mask)
        local = diagonal_gaussian(self.local_head(features), self.local_dim)
        z = local.mean[None] if n_samples is None else local.rsample(n_samples, generator)  # (S, ..., B, dz)
        logits = self.cluster_logits(z)
        factor_mean, factor_logvar = self._global_factors(features, logits.softmax(-1))
        return GroupInference(local, z, logits, product_of_gaussians(factor_mean, factor_logvar, dim=-2))

    def global_posterior(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                         z: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(β | X, Z) of the group x (..., B, features) -> (..., g) (eqs 4.8–4.9). Z defaults
        to the encoder means, which makes the posterior a deterministic summary of the group."""
        features = self._features(x, mask)
        if z is None:
            z = diagonal_gaussian(self.local_head(features), self.local_dim).mean
        factor_mean, factor_logvar = self._global_factors(features, self.cluster_probs(z))
        return product_of_gaussians(factor_mean, factor_logvar, dim=-2)

    def decode(self, z: torch.Tensor) -> Likelihood:
        """p(x | z, β) (eq. 4.2) of rows whose latent is [z, β]: (..., dim_z + g)."""
        if z.shape[-1] != self.local_dim + self.global_dim:
            raise ValueError(f"decode takes [z, β] with {self.local_dim} + {self.global_dim} entries, got {z.shape[-1]}")
        return self.likelihood_head(self.decoder(z))

    def decode_group(self, z: torch.Tensor, beta: torch.Tensor) -> Likelihood:
        """p(x_i | z_i, β) of a group: z (..., B, dim_z) with the β it shares, broadcast against z's
        leading dims (e.g. (..., 1, g))."""
        return self.decode(torch.cat([z, beta.expand(*z.shape[:-1], -1)], -1))

    # -- the objective -----------------------------------------------------------------------------------
    def elbo(self, x: torch.Tensor, mask: torch.Tensor | None = None, n_samples: int = 1,
             kl_weight: float = 1.0, generator: torch.Generator | None = None,
             cluster_samples: int | None = None) -> ModelOutput:
        """The ELBO of one group x (B, features), eqs (4.10–4.11), reported per sample.

        The expectation over d is the analytic sum over K weighted by q(d | z).
        ``cluster_samples`` replaces that sum by a Monte Carlo average over that many draws
        d ~ q(d | z) (a check of the sum: same value in expectation; not for training).
        ``kl_weight`` scales every KL term in the loss (1 for UG-VAE: the thesis adds no weight)."""
        batch = x.shape[-2]
        inferred = self.infer(x, mask, n_samples, generator)
        z = inferred.z  # (S, B, dz)
        beta = inferred.global_posterior.rsample(None, generator)  # (S, g)
        log_px = masked_sum(self.decode_group(z, beta[..., None, :]).log_prob(x), mask)  # (S, B)
        log_pz_d = self.cluster_log_prob(z, beta)  # (S, B, K)
        log_q_d = inferred.cluster_logits.log_softmax(-1)  # (S, B, K)
        log_p_d = -math.log(self.clusters)
        if cluster_samples is None:
            q_d = log_q_d.exp()
            cross_z = -(q_d * log_pz_d).sum(-1)  # −E_q(d|z) log p(z | d, β)
            kl_d = (q_d * (log_q_d - log_p_d)).sum(-1)  # KL(q(d | z) || Cat(1/K))
        else:
            d = torch.multinomial(log_q_d.exp().reshape(-1, self.clusters), cluster_samples, replacement=True,
                                  generator=generator).reshape(*log_q_d.shape[:-1], cluster_samples)
            cross_z = -log_pz_d.gather(-1, d).mean(-1)
            kl_d = (log_q_d.gather(-1, d) - log_p_d).mean(-1)
        kl_z = cross_z - gaussian_entropy(inferred.local)  # E_q[log q(z|x) − log p(z|d,β)]
        kl_beta = inferred.global_posterior.kl_standard_normal()  # (S,)
        kl = kl_z + kl_d + kl_beta[..., None] / batch  # (S, B): the group's KL_β shared out per sample
        elbo = (log_px - kl).mean(0)
        loss = -(log_px - kl_weight * kl).mean()
        return ModelOutput(
            loss=loss, elbo=elbo.detach(), log_likelihood=log_px.mean(0).detach(), kl=kl.mean(0).detach(),
            extras={"kl_z": kl_z.mean(0).detach(), "kl_d": kl_d.mean(0).detach(), "kl_beta": kl_beta.mean().detach()},
        )

    @torch.no_grad()
    def group_log_weights(self, x: torch.Tensor, n_importance: int, generator: torch.Generator | None = None
                          ) -> torch.Tensor:
        """log p(X, Z, β) − log q(Z, β | X) for ``n_importance`` draws of (Z, β): (K,).

        d is summed out exactly in the joint, p(z | β) = Σ_d (1/K) p(z | d, β), so the
        importance weights need no q(d | z)."""
        inferred = self.infer(x, None, n_importance, generator)
        z = inferred.z  # (S, B, dz)
        beta = inferred.global_posterior.rsample(None, generator)  # (S, g)
        log_px = self.decode_group(z, beta[..., None, :]).log_prob(x).sum(-1)  # (S, B)
        log_pz = torch.logsumexp(self.cluster_log_prob(z, beta), -1) - math.log(self.clusters)
        log_local = (log_px + log_pz - inferred.local.log_prob(z)).sum(-1)  # (S,)
        return log_local + standard_normal_log_prob(beta) - inferred.global_posterior.log_prob(beta)

    @torch.no_grad()
    def evaluate_group_bounds(self, x: torch.Tensor, ks: tuple[int, ...] = (5, 50), seed: int = 0,
                        group_size: int | None = None) -> dict[str, float]:
        """Test ELBO and IWAE_K bounds on log p(X) of consecutive groups, in nats per data point
        (the keys the model card uses for every model)."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        group_size = group_size or self.config.group_size
        totals = {"elbo": 0.0, **{f"iwae_{k}": 0.0 for k in ks}}
        for start in range(0, len(x), group_size):
            group = x[start:start + group_size]
            totals["elbo"] += float(self.elbo(group, generator=generator).elbo.sum())
            for k in ks:
                log_w = self.group_log_weights(group, k, generator)
                totals[f"iwae_{k}"] += float(log_mean_exp(log_w, dim=0))
        n = len(x)
        return {"test_elbo": round(totals["elbo"] / n, 3),
                **{f"test_iwae_{k}": round(totals[f"iwae_{k}"] / n, 3) for k in ks}, "n_test": int(n)}

    # -- sampling -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_latents(self, n: int, generator: torch.Generator | None = None, group_size: int | None = None,
                       beta: torch.Tensor | None = None, cluster: int | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Ancestral samples of the prior (eqs 4.1–4.4): groups of ``group_size`` share one β.
        Returns z (n, dim_z), β (n, g) and d (n,); ``beta`` or ``cluster`` fix those."""
        group_size = group_size or self.config.group_size
        n_groups = -(-n // group_size)
        device = self.device
        if beta is None:
            group_beta = torch.randn((n_groups, self.global_dim), generator=generator, device=device)
        else:
            group_beta = torch.as_tensor(beta, dtype=torch.float32, device=device).expand(n_groups, self.global_dim)
        betas = group_beta.repeat_interleave(group_size, 0)[:n]  # (n, g)
        if cluster is None:
            d = torch.randint(self.clusters, (n,), generator=generator, device=device)
        else:
            d = torch.full((n,), int(cluster), dtype=torch.long, device=device)
        prior = self.cluster_prior(betas)  # (n, K, dz)
        rows = torch.arange(n, device=device)
        component = DiagonalGaussian(prior.mean[rows, d], prior.std[rows, d])
        return component.rsample(None, generator), betas, d

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """[z, β] drawn from the hierarchical prior, groups of B sharing β: (n, dim_z + g), ready
        for ``decode`` (so the shared ``generate`` works unchanged)."""
        z, beta, _ = self.sample_latents(n, generator)
        return torch.cat([z, beta], -1)

    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder means of n draws of the prior, groups of B sharing β: (n, features)."""
        return self.decode(self.sample_prior(n, generator)).mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder mean at the encoder means and the group's global posterior mean (x is one group)."""
        beta = self.global_posterior(x, mask).mean
        return self.decode_group(self.encode(x, mask).mean, beta).mean


@register_model
class MLVAE(UGVAE):
    """ML-VAE (Bouchacourt et al. 2018) as the thesis compares it: UG-VAE with K = 1 (one
    unimodal p(z | β)), trained on random batches rather than supervised groups."""

    model_key = "mlvae"

    def __init__(self, config: UGVAEConfig):
        if config.clusters != 1:
            raise ValueError(f"ML-VAE has one cluster (K = 1), got clusters={config.clusters}")
        super().__init__(config)


@register_model
class GMVAE(UGVAE):
    """GMVAE: the mixture prior p(z | d) with learned constant components, no global variable
    (g = 0); the same encoder, q(d | z) and decoder parts as UG-VAE."""

    model_key = "gmvae"

    def __init__(self, config: UGVAEConfig):
        if config.global_dim != 0:
            raise ValueError(f"GMVAE has no global variable (global_dim=0), got global_dim={config.global_dim}")
        super().__init__(config)
