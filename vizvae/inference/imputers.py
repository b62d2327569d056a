"""Imputation of the missing part of rows (inpainting, for images) under any mask, behind one call:

    impute(model, x, mask, method, ImputationSettings(n_samples=32, seed=0, ...)) -> Imputation

``x`` (batch, features) holds the rows — the true values in the missing entries when they are
known, anything (e.g. NaN) otherwise — and ``mask`` (batch, features) is True where an entry is
observed. ``method`` is one of ``METHODS``:

* ``zero`` — missing entries set to 0: a point, so no samples to speak of and no likelihood;
* ``mean`` — the independent-entries baseline: each missing entry from its own marginal, with
  ``feature_mean`` (e.g. the training set's per-pixel means) as the mean; Bernoulli for a Bernoulli
  decoder (then it has a likelihood), a point otherwise;
* ``encoder`` — z_s ~ q(z | x_O), one encoder pass, each draw decoded once;
* ``hmc`` — HMC on p(z | x_O) ∝ p(x_O | z) p(z) started at the encoder: the model's own trained step
  sizes and inflation for HMC-VAE / HH-VAE; any other model is adapted first (``kernels.adapt``: a
  warm-up of dual averaging to acceptance 0.65 and a diagonal mass from the warm-up draws), then
  T transitions of LF leapfrog steps;
* ``pseudo_gibbs`` and ``mwg`` — ``vizvae.inference.gibbs`` (Mattei's slides, Algorithm 1);
* ``sir`` — self-normalised importance sampling with the encoder as proposal (MIWAE-style) for the
  moments and the likelihood, and sampling importance resampling for the samples.

Every latent method yields draws z_i with weights w_i (1/k when unweighted) and reports

    E[x_U | x_O]   ≈ Σ_i w_i E[x_U | z_i]
    Var[x_U | x_O] ≈ Σ_i w_i (Var[x_U | z_i] + E[x_U | z_i]²) − E[x_U | x_O]²   (per entry)
    −log p(x_U | x_O) ≈ −log Σ_i w_i p(x_U | z_i)                                (eq. 5.14)

— Rao-Blackwellised over the decoder, so the mean imputation is smooth even for a Bernoulli decoder
— plus ``n_samples`` draws x̂_U ~ p̂(x_U | x_O) and, for a model with a predictor, the predictor's
p(y | x_O) ≈ Σ_i w_i p(y | x̂_i, h_1(z_i)).

Edge masks are answers, not errors: with nothing observed p(z | x_O) = p(z), so every latent method
returns prior samples; with nothing missing the rows come back unchanged (NLL 0). Both say so in
``Imputation.message``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from vizvae.inference.gibbs import acceptance_warning, metropolis_within_gibbs, pseudo_gibbs
from vizvae.kernels.adapt import WarmupSettings, warmup
from vizvae.kernels.hmc import hmc_sample
from vizvae.inference.importance import ess_warning, importance_resample
from vizvae.inference.imputation import missing_log_likelihood, predictive_target
from vizvae.kernels.importance import kish_ess
from vizvae.models.capabilities import LatentModel, PredictorModel, TunedHMCModel
from vizvae.models.distributions import BernoulliLikelihood, Likelihood

__all__ = [
    "Imputation", "ImputationMethod", "ImputationSettings", "METHODS", "LATENT_METHODS", "impute", "supported_methods",
    "native_method",
    "classifier_label_probs", "trust_warning",
]

FILL_FLOOR = 1e-3  # a mean fill's Bernoulli probability is kept in [1e-3, 1 − 1e-3]: a finite likelihood


@dataclass(frozen=True)
class ImputationMethod:
    key: str
    label: str
    summary: str


METHODS: dict[str, ImputationMethod] = {m.key: m for m in (
    ImputationMethod("zero", "Zero fill", "Missing entries set to 0. A point, not a distribution: no likelihood."),
    ImputationMethod("mean", "Mean fill", "Each missing entry from its own marginal (the training set's mean), "
                     "independently of everything observed."),
    ImputationMethod("encoder", "Gaussian encoder", "z ~ q(z | x_O), decoded once: one pass through the encoder."),
    ImputationMethod("hmc", "HMC", "HMC chains on p(z | x_O) started at the encoder (the model's trained step sizes "
                     "and inflation when it has them)."),
    ImputationMethod("pseudo_gibbs", "Pseudo-Gibbs", "Alternate z ~ q(z | x_O, x̂_U) and x̂_U ~ p(x_U | z). Biased "
                     "unless the encoder is the exact posterior."),
    ImputationMethod("mwg", "Metropolis-within-Gibbs", "Pseudo-Gibbs with a Metropolis accept/reject of each encoder "
                     "draw (Mattei's Algorithm 1): targets p(x_U | x_O) exactly."),
    ImputationMethod("sir", "Importance sampling (SIR)", "Encoder draws weighted by p(x_O | z) p(z) / q(z | x_O) "
                     "(self-normalised), resampled for the samples (MIWAE-style)."),
)}
LATENT_METHODS = ("encoder", "hmc", "pseudo_gibbs", "mwg", "sir")


@dataclass
class Imputation:
    """What every method returns. Shapes: ``samples`` and ``decoded`` (batch, S, features), ``mean`` and
    ``variance`` (batch, features), ``missing_nll``, ``mse``, ``n_missing`` (batch,).

    Observed entries are kept as given everywhere (their variance is 0). ``samples`` are draws
    x̂_U ~ p̂(x_U | x_O); ``decoded`` are the decoder's means E[x_U | z_s] at the same latents (what an
    inpainting figure shows; the samples themselves for the fills). ``missing_nll`` is
    −log p(x_U | x_O) in nats summed over the missing entries of the row (None when the truth is unknown
    or the method has no likelihood), ``mse`` the mean squared error of ``mean`` over them.
    """

    method: str
    samples: torch.Tensor
    decoded: torch.Tensor
    mean: torch.Tensor
    variance: torch.Tensor
    missing_nll: torch.Tensor | None
    mse: torch.Tensor | None
    n_missing: torch.Tensor
    runtime_s: float
    latents: torch.Tensor | None = None  # (batch, S, latent), the latents of ``samples``
    label_probs: torch.Tensor | None = None  # (batch, classes): the model's p(y | x_O), or None
    message: str | None = None
    diagnostics: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return METHODS[self.method].label

    @property
    def missing_nll_per_entry(self) -> torch.Tensor | None:
        """−log p(x_U | x_O) / |U| (nats per missing entry, the units of Table 5.3); 0 when |U| = 0."""
        if self.missing_nll is None:
            return None
        return self.missing_nll / self.n_missing.clamp_min(1).to(self.missing_nll.dtype)


@dataclass
class _Draws:
    """A latent method's output before the shared summaries."""

    latents: torch.Tensor  # (batch, k, latent): the draws the moments and the likelihood use
    log_weights: torch.Tensor | None  # (batch, k) normalised, None for equal weights
    sample_latents: torch.Tensor  # (batch, S, latent)
    samples: torch.Tensor | None = None  # (batch, S, features) when the method drew them itself (Gibbs)
    sample_likelihood: Likelihood | None = None  # p(x | sample_latents) when already decoded
    diagnostics: dict[str, float] = field(default_factory=dict)


# -- which models ---------------------------------------------------------------------------------------------
NATIVE_METHODS = {"encoder": "encoder", "importance": "sir", "hmc": "hmc"}  # native_sampler -> its method


def supported_methods(model: Any) -> tuple[str, ...]:
    """The methods ``model`` supports, in the order of ``METHODS``: all of them for a per-row latent
    model (``LatentModel``: one latent space under its prior, every VAE of vizvae but the UG-VAE
    family, whose joint is over a group); the fills only otherwise."""
    return tuple(METHODS) if isinstance(model, LatentModel) else ("zero", "mean")


def native_method(model: Any) -> str:
    """The model's own posterior sampler, the one its imputations are judged by (thesis Tables 5.3–5.5,
    Fig. 5.6): the method of its declared ``native_sampler`` — HMC for a model with trained HMC,
    importance sampling (SIR) for MIWAE and MIWAEM, else the encoder."""
    return NATIVE_METHODS[type(model).native_sampler]


# -- the one call ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImputationSettings:
    """How ``impute`` runs a method: draws, iterations and the HMC of a model without trained HMC."""

    n_samples: int = 32  # draws per row: chains for HMC and the Gibbs samplers, resampled draws for SIR
    seed: int = 0  # seeds the draws when no generator is given
    n_iterations: int = 100  # Gibbs sweeps
    n_proposals: int = 1000  # importance draws for SIR
    n_transitions: int = 10  # HMC of a model without trained hyper-parameters: T transitions
    n_leapfrog: int = 5  # ... of LF leapfrog steps, after n_warmup transitions adapting the step size
    n_warmup: int = 60  # ... (dual averaging to acceptance 0.65) and a diagonal mass (``kernels.adapt``)
    truth_known: bool = True  # False: no NLL and no MSE (the missing entries of x are ignored)
    predict_labels: bool = True  # the predictor's p(y | x_O), for a model with one


def impute(model: Any, x: torch.Tensor, mask: torch.Tensor | None, method: str,
           settings: ImputationSettings = ImputationSettings(), *, generator: torch.Generator | None = None,
           feature_mean: torch.Tensor | None = None) -> Imputation:
    """Impute the missing entries of ``x`` (batch, features) under ``mask`` with ``method``.

    ``settings`` (``ImputationSettings``) sets the number of draws and each method's own steps.
    ``feature_mean`` (features,) is the mean fill's value (default: the row's mean observed value).
    Reproducible from ``settings.seed`` (or ``generator``, on the model's device).
    """
    if method not in METHODS:
        raise ValueError(f"unknown imputation method {method!r}; expected one of {', '.join(METHODS)}")
    if settings.n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {settings.n_samples}")
    started = time.perf_counter()
    device, dtype = model.device, next(model.parameters()).dtype
    x = torch.as_tensor(x, device=device).to(dtype)
    if x.dim() != 2:
        raise ValueError(f"x must be (batch, features), got shape {tuple(x.shape)}")
    mask = torch.ones_like(x, dtype=torch.bool) if mask is None else torch.as_tensor(mask, device=device).bool()
    mask = mask.expand_as(x)
    generator = generator or torch.Generator(device=device).manual_seed(int(settings.seed))
    observed_x = torch.where(mask, x, torch.zeros((), dtype=dtype, device=device))  # NaN-free model input
    truth = observed_x if not settings.truth_known else torch.where(mask, x, torch.nan_to_num(x))
    n_missing = (~mask).sum(-1)

    if bool((n_missing == 0).all()):
        return _unchanged(method, observed_x, n_missing, settings.n_samples, started)

    if method in ("zero", "mean"):
        result = _fill(model, method, observed_x, truth, mask, settings, generator, feature_mean)
    else:
        if bool((~mask.any(-1)).all()):
            draws = _prior_draws(model, len(x), settings.n_samples, generator)
        else:
            draws = _LATENT[method](model, observed_x, mask, generator, settings)
        result = _summarise(model, method, draws, observed_x, truth, mask, generator, settings)
    result.n_missing = n_missing
    result.message = _edge_message(method, mask, n_missing)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    result.runtime_s = time.perf_counter() - started
    return result


def _edge_message(method: str, mask: torch.Tensor, n_missing: torch.Tensor) -> str | None:
    """What an edge mask means for the result: rows with nothing observed or nothing hidden."""
    nothing_observed = ~mask.any(-1)  # (batch,)
    if bool(nothing_observed.all()):
        return ("Nothing is observed, so p(z | x_O) is the prior p(z): the imputations are samples from the model "
                "itself." if method in LATENT_METHODS else
                "Nothing is observed: the fill is all there is to see.")
    if bool(nothing_observed.any()):
        return f"{int(nothing_observed.sum())} row(s) have nothing observed; their imputations target the prior."
    if bool((n_missing == 0).any()):
        return f"{int((n_missing == 0).sum())} row(s) have nothing hidden and come back unchanged."
    return None


def _unchanged(method: str, x: torch.Tensor, n_missing: torch.Tensor, n_samples: int, started: float) -> Imputation:
    copies = x.unsqueeze(1).expand(-1, n_samples, -1)
    zeros = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    return Imputation(method, copies, copies, x, torch.zeros_like(x), zeros, zeros, n_missing,
                      time.perf_counter() - started,
                      message="Nothing is hidden: the image is returned unchanged (the likelihood of no missing "
                              "entries is 1, so the NLL is 0).")


# -- the fills -------------------------------------------------------------------------------------------------
@torch.no_grad()
def _fill(model: Any, method: str, x: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor,
          settings: ImputationSettings, generator: torch.Generator, feature_mean: torch.Tensor | None) -> Imputation:
    n_samples, truth_known = settings.n_samples, settings.truth_known
    zeros = torch.zeros((), dtype=x.dtype, device=x.device)
    missing_nll = None
    if method == "zero":
        value = torch.zeros_like(x)
        variance = torch.zeros_like(x)
        samples = torch.where(mask, x, value).unsqueeze(1)  # a point: one "sample"
    else:
        if feature_mean is None:
            counts = mask.sum(-1, keepdim=True).clamp_min(1).to(x.dtype)
            value = (torch.where(mask, x, zeros).sum(-1, keepdim=True) / counts).expand_as(x)
        else:
            value = torch.as_tensor(feature_mean, dtype=x.dtype, device=x.device).expand_as(x)
        if _bernoulli_decoder(model):
            p = value.clamp(FILL_FLOOR, 1 - FILL_FLOOR)
            variance = p * (1 - p)
            u = torch.rand((len(x), n_samples, x.shape[-1]), generator=generator, device=x.device, dtype=x.dtype)
            samples = torch.where(mask.unsqueeze(1), x.unsqueeze(1), (u < p.unsqueeze(1)).to(x.dtype))
            if truth_known:
                log_p = truth * p.log() + (1 - truth) * (1 - p).log()
                missing_nll = -torch.where(mask, zeros, log_p).sum(-1)
        else:
            variance = torch.zeros_like(x)
            samples = torch.where(mask, x, value).unsqueeze(1)
    mean = torch.where(mask, x, value)
    variance = torch.where(mask, zeros, variance)
    label_probs = None
    if settings.predict_labels and _has_predictor(model):
        everything = torch.ones_like(mask)  # what the predictor makes of the filled-in image
        z = model.encode(mean, everything).mean
        label_probs = model.predict_y(mean, everything, z)
    return Imputation(method, samples, samples, mean, variance, missing_nll,
                      _mse(mean, truth, mask) if truth_known else None, (~mask).sum(-1), 0.0,
                      label_probs=label_probs)


def _bernoulli_decoder(model: Any) -> bool:
    with torch.no_grad():
        z = torch.zeros(1, model.latent_dim, dtype=next(model.parameters()).dtype, device=model.device)
        return isinstance(model.decode(z), BernoulliLikelihood)


def _has_predictor(model: Any) -> bool:
    return isinstance(model, PredictorModel) and model.has_predictor


def _mse(mean: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    squared = torch.where(mask, torch.zeros((), dtype=mean.dtype, device=mean.device), (mean - truth).square())
    return squared.sum(-1) / (~mask).sum(-1).clamp_min(1).to(mean.dtype)


# -- the latent methods -------------------------------------------------------------------------------------
def _standard_normal(shape: tuple[int, ...], generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)


def _prior_draws(model: Any, batch: int, n_samples: int, generator: torch.Generator) -> _Draws:
    """z ~ p(z) = N(0, I): the exact p(z | x_O) when nothing is observed."""
    like = next(model.parameters())
    z = _standard_normal((batch, n_samples, model.latent_dim), generator, like)
    return _Draws(z, None, z, diagnostics={"prior": 1.0})


@torch.no_grad()
def _encoder_draws(model, x, mask, generator, settings: ImputationSettings) -> _Draws:
    z = model.encode(x, mask).rsample(settings.n_samples, generator).transpose(0, 1)  # (batch, S, latent)
    return _Draws(z, None, z)


def _adapted_hmc(model, x, mask, generator, settings: ImputationSettings):
    """HMC for a model nobody tuned: chains from the encoder's Gaussian, ``n_warmup`` transitions of
    dual averaging (one step size per row, to acceptance 0.65) and a Welford diagonal mass started
    at the encoder's σ², then ``n_transitions`` with the adapted kernel. Returns (run, warm-up)."""
    with torch.no_grad():
        encoder = model.encode(x, mask)
    mean, std = encoder.mean.unsqueeze(1), encoder.std.unsqueeze(1)  # (batch, 1, latent)
    start = mean + std * _standard_normal((len(x), settings.n_samples, mean.shape[-1]), generator, mean)
    x_rows, mask_rows = x.unsqueeze(1), mask.unsqueeze(1)  # broadcast over the chains

    def log_joint(z: torch.Tensor) -> torch.Tensor:  # (batch, chains, latent) -> (batch, chains)
        return model.log_joint(x_rows, mask_rows, z)

    warm = warmup(log_joint, start, settings.n_leapfrog, WarmupSettings(n_warmup=settings.n_warmup),
                  initial_step_size=0.5, generator=generator, initial_inverse_mass=std.square())
    result = hmc_sample(log_joint, warm.state, warm.step_sizes(settings.n_transitions, generator),
                        n_leapfrog=settings.n_leapfrog, inverse_mass=warm.inverse_mass, generator=generator)
    return result, warm


def _hmc_draws(model, x, mask, generator, settings: ImputationSettings) -> _Draws:
    n_samples, n_transitions, n_leapfrog = settings.n_samples, settings.n_transitions, settings.n_leapfrog
    if isinstance(model, TunedHMCModel):
        hyper = model.hmc
        result = model.posterior_samples(x, mask, n_chains=n_samples, generator=generator)
        how = {"trained": 1.0, "transitions": float(hyper.n_transitions), "leapfrog": float(hyper.n_leapfrog)}
    else:
        result, warm = _adapted_hmc(model, x, mask, generator, settings)
        how = {"trained": 0.0, "adapted": 1.0, "warmup": float(settings.n_warmup),
               "step_size": float(warm.step_size.mean()), "transitions": float(n_transitions),
               "leapfrog": float(n_leapfrog)}
    z = result.samples.detach()
    diagnostics = {**how, "acceptance_rate": result.acceptance_rate() if result.n_transitions else 1.0,
                   "divergences": float(result.n_divergences())}
    return _Draws(z, None, z, diagnostics=diagnostics)


def _gibbs_draws(sampler: Callable) -> Callable[[Any, torch.Tensor, torch.Tensor, torch.Generator, ImputationSettings],
                                                   _Draws]:
    def draws(model, x, mask, generator, settings: ImputationSettings) -> _Draws:
        chains = sampler(model, x, mask, n_chains=settings.n_samples, n_iterations=settings.n_iterations,
                         generator=generator)
        diagnostics = {"iterations": float(settings.n_iterations)}
        if chains.acceptance_rate is not None:
            diagnostics["acceptance_rate"] = chains.acceptance_rate
        return _Draws(chains.latents, None, chains.latents, samples=chains.completed,
                      sample_likelihood=chains.likelihood, diagnostics=diagnostics)

    return draws


def _sir_draws(model, x, mask, generator, settings: ImputationSettings) -> _Draws:
    n_proposals = settings.n_proposals
    z, log_w, index = importance_resample(model, x, mask, n_proposals, settings.n_samples, generator)
    chosen = torch.gather(z, 1, index.unsqueeze(-1).expand(-1, -1, z.shape[-1]))  # (batch, S, latent)
    ess = kish_ess(log_w)
    return _Draws(z, log_w, chosen, diagnostics={"proposals": float(n_proposals), "ess": float(ess.mean()),
                                                 "ess_min": float(ess.min())})


_LATENT: dict[str, Callable[[Any, torch.Tensor, torch.Tensor, torch.Generator, ImputationSettings], _Draws]] = {
    "encoder": _encoder_draws,
    "hmc": _hmc_draws,
    "pseudo_gibbs": _gibbs_draws(pseudo_gibbs),
    "mwg": _gibbs_draws(metropolis_within_gibbs),
    "sir": _sir_draws,
}


def trust_warning(diagnostics: dict[str, float]) -> str | None:
    """What makes a result untrustworthy, in words with its numbers, from an ``Imputation``'s
    ``diagnostics``: a Metropolis-within-Gibbs run whose chains hardly moved (``acceptance_warning``)
    or importance sampling with too few effective draws (``ess_warning``); None otherwise."""
    if "acceptance_rate" in diagnostics and "iterations" in diagnostics:  # HMC reports no sweeps
        return acceptance_warning(diagnostics["acceptance_rate"], int(diagnostics["iterations"]))
    if "ess" in diagnostics and "proposals" in diagnostics:
        return ess_warning(diagnostics.get("ess_min", diagnostics["ess"]), int(diagnostics["proposals"]))
    return None


# -- the shared summaries ------------------------------------------------------------------------------------
@torch.no_grad()
def _summarise(model: Any, method: str, draws: _Draws, x: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor,
               generator: torch.Generator, settings: ImputationSettings) -> Imputation:
    zeros = torch.zeros((), dtype=x.dtype, device=x.device)
    likelihood = model.decode(draws.latents)  # (batch, k, features)
    k = draws.latents.shape[1]
    weights = (torch.full(draws.latents.shape[:2], 1.0 / k, dtype=x.dtype, device=x.device)
               if draws.log_weights is None else draws.log_weights.exp()).unsqueeze(-1)  # (batch, k, 1)
    conditional_mean = likelihood.mean
    mean = (weights * conditional_mean).sum(1)
    second_moment = (weights * (likelihood.variance + conditional_mean.square())).sum(1)
    variance = (second_moment - mean.square()).clamp_min(0.0)
    mean = torch.where(mask, x, mean)
    variance = torch.where(mask, zeros, variance)

    observed = mask.unsqueeze(1)
    if draws.latents is draws.sample_latents:
        sample_likelihood = likelihood
    else:
        sample_likelihood = draws.sample_likelihood
        if sample_likelihood is None:
            sample_likelihood = model.decode(draws.sample_latents)
    samples = draws.samples
    if samples is None:
        samples = torch.where(observed, x.unsqueeze(1), sample_likelihood.sample(generator).to(x.dtype))
    decoded = torch.where(observed, x.unsqueeze(1), sample_likelihood.mean)

    missing_nll = mse = None
    if settings.truth_known:
        missing_nll = -missing_log_likelihood(model, truth, mask, draws.latents, draws.log_weights)
        mse = _mse(mean, truth, mask)
    label_probs = None
    if settings.predict_labels and _has_predictor(model):
        label_probs = predictive_target(model, x, mask, draws.latents, draws.log_weights)
    return Imputation(method, samples, decoded, mean, variance, missing_nll, mse, (~mask).sum(-1), 0.0,
                      latents=draws.sample_latents, label_probs=label_probs, diagnostics=draws.diagnostics)


# -- a separate classifier's view -----------------------------------------------------------------------------
@torch.no_grad()
def classifier_label_probs(classifier: Callable[[torch.Tensor], torch.Tensor], imputation: Imputation) -> torch.Tensor:
    """p(y | x_O) by an external classifier (logits of (n, features) images), for a model without a
    predictor: its softmax averaged over the imputation's decoded samples, (batch, classes)."""
    decoded = imputation.decoded
    batch, n, features = decoded.shape
    parameter = next(classifier.parameters(), None) if isinstance(classifier, torch.nn.Module) else None
    if parameter is not None:
        decoded = decoded.to(device=parameter.device, dtype=parameter.dtype)
    probs = torch.softmax(classifier(decoded.reshape(batch * n, features)), dim=-1)
    return probs.reshape(batch, n, -1).mean(1)
