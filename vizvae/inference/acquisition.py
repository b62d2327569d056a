"""Sequential active information acquisition, SAIA (thesis §5.3; EDDI, Ma et al. 2018, slides 002).

Start with nothing observed. At each step every still-missing feature i gets a reward, the argmax is
acquired — its true value revealed — and the model predicts y from what it has seen so far. Three
rewards:

* ``mi`` — the sampling-based reward of §5.3: R_i = I(y; x_i | x_O) (eqs 5.11–5.12), estimated
  by the histogram estimator (5.13) from S joint draws (x_i, y) made with the model's own sampler
  (HMC for HMC models): ε_s ~ p(ε | x_O), x_s ~ p(x | ε_s), y_s ~ p(y | x̂_s, h_1(ε_s)).
* ``kl`` — the encoder-based reward of EDDI:
  R_i = E_{x_i, y ~ p(· | x_O)} [KL(q(ε | x_i, x_O) ‖ q(ε | x_O)) − KL(q(ε | x_i, x_O, y) ‖ q(ε | x_O, y))],
  with (x_i, y) drawn through the Gaussian encoder q(ε | x_O) and every KL analytic.
* ``random`` — a uniformly random order.

Every step predicts y with the model's own sampler, whatever chose the order, so the strategies are
compared on the same predictions. All of it is batched over rows: a dataset's test rows walk
through their acquisitions together, each with its own mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from vizvae.models.distributions import DiagonalGaussian
from vizvae.inference.imputation import resampled_draws

STRATEGIES = ("mi", "kl", "random")
STRATEGY_LABELS = {"mi": "sampling-based MI (eq. 5.13)", "kl": "encoder KL (EDDI)", "random": "random"}


# -- the histogram estimator of eq. (5.13) ---------------------------------------------------------------------
def bin_indices(values: torch.Tensor, n_bins: int, levels: torch.Tensor | int = 0) -> torch.Tensor:
    """Bin of each sample: (..., S) -> (..., S) longs. Equal-width bins over the samples' range, or the
    value itself for a discrete variable with ``levels`` > 0 values coded 0..levels-1 (per leading entry)."""
    levels = torch.as_tensor(levels, device=values.device)
    low = values.min(-1, keepdim=True).values
    high = values.max(-1, keepdim=True).values
    width = (high - low).clamp_min(1e-12) / n_bins
    continuous = ((values - low) / width).floor().long().clamp(0, n_bins - 1)
    discrete = values.round().long().clamp_min(0)
    discrete = torch.minimum(discrete, (levels - 1).clamp_min(0).unsqueeze(-1).expand_as(discrete))
    return torch.where((levels > 0).unsqueeze(-1).expand_as(continuous), discrete, continuous)


def histogram_mutual_information(x: torch.Tensor, y: torch.Tensor, bins: int = 6, x_levels: torch.Tensor | int = 0,
                                 y_levels: int = 0) -> torch.Tensor:
    """Î(x; y) = Σ_ij p(i, j) log p(i, j) / (p_x(i) p_y(j)) from S paired samples (eq. 5.13), with
    relative frequencies in equal-width bins (or the categories of a discrete variable).

    ``x`` (..., S) and ``y`` (..., S), batched over leading dims -> (...,) in nats."""
    x, y = torch.broadcast_tensors(x, y)
    levels_x = torch.as_tensor(x_levels, device=x.device).expand(x.shape[:-1])
    n_x = max(bins, int(levels_x.max()) if levels_x.numel() else 0)
    n_y = bins if y_levels <= 0 else y_levels
    ix = bin_indices(x, bins, levels_x)
    iy = bin_indices(y, bins, y_levels)
    joint = torch.zeros((*x.shape[:-1], n_x * n_y), dtype=x.dtype, device=x.device)
    joint.scatter_add_(-1, ix * n_y + iy, torch.ones_like(x))
    joint = joint.reshape(*x.shape[:-1], n_x, n_y) / x.shape[-1]
    p_x = joint.sum(-1, keepdim=True)
    p_y = joint.sum(-2, keepdim=True)
    ratio = joint / (p_x * p_y).clamp_min(1e-30)
    terms = torch.where(joint > 0, joint * ratio.clamp_min(1e-30).log(), torch.zeros_like(joint))
    return terms.sum((-2, -1)).clamp_min(0.0)


# -- joint draws of (x, y) given x_O -------------------------------------------------------------------------------
@dataclass
class JointDraws:
    """S draws per row from p(x, y | x_O): ``x`` (batch, S, D), ``y`` (batch, S), and the predictor's
    output per draw (``predictive``: class probabilities (batch, S, C) or Gaussian means (batch, S, 1))."""

    x: torch.Tensor
    y: torch.Tensor
    predictive: torch.Tensor


def target_draws(model, predictive: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """y_s ~ p(y | x̂_s, h_1): a class index, or the Gaussian mean plus the predictor's noise."""
    if model.target_kind == "categorical":
        flat = predictive.reshape(-1, predictive.shape[-1])
        return torch.multinomial(flat, 1, generator=generator).reshape(predictive.shape[:-1]).to(predictive.dtype)
    mean = predictive[..., 0]
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + model.target_sigma * noise


@torch.no_grad()
def joint_draws(model, x: torch.Tensor, mask: torch.Tensor, n_samples: int, generator: torch.Generator | None = None,
                encoder_only: bool = False) -> JointDraws:
    """ε from the model's own sampler (or the Gaussian encoder with ``encoder_only``), then decode."""
    if encoder_only:
        eps = model.encode(x, mask).rsample(n_samples, generator).transpose(0, 1)
    else:
        eps = resampled_draws(model.posterior_draws(x, mask, n_samples, generator), generator)
    eps = eps.detach()  # (batch, S, latent)
    x_draws = model.decode(eps).sample(generator)
    x_draws = torch.where(mask.unsqueeze(-2), x.unsqueeze(-2), x_draws)
    predictive = model.predict_y(x.unsqueeze(-2), mask.unsqueeze(-2), eps)
    return JointDraws(x_draws, target_draws(model, predictive, generator), predictive)


# -- rewards -------------------------------------------------------------------------------------------------------
def target_levels(model) -> int:
    return int(model.dependency.config.n_classes) if model.target_kind == "categorical" else 0


def mi_rewards(model, draws: JointDraws, bins: int = 6) -> torch.Tensor:
    """R_i = Î(y; x_i | x_O) for every feature (eq. 5.13): (batch, D)."""
    x = draws.x.transpose(-1, -2)  # (batch, D, S)
    y = draws.y.unsqueeze(-2)  # (batch, 1, S)
    levels = model.types.levels.to(x.device)
    return histogram_mutual_information(x, y, bins, levels.expand(x.shape[:-1]), target_levels(model))


@torch.no_grad()
def kl_rewards(model, x: torch.Tensor, mask: torch.Tensor, n_samples: int = 50,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """EDDI's encoder-based reward for every feature: (batch, D) (see the module docstring)."""
    batch, d = x.shape
    draws = joint_draws(model, x, mask, n_samples, generator, encoder_only=True)
    y_draws = draws.y  # (batch, S)
    eye = torch.eye(d, dtype=torch.bool, device=x.device)
    # x with feature i set to its s-th draw: (batch, D candidates, S, D)
    x_with = torch.where(eye.view(1, d, 1, d), draws.x.unsqueeze(1), x.view(batch, 1, 1, d))
    mask_with = (mask.view(batch, 1, 1, d) | eye.view(1, d, 1, d)).expand(batch, d, n_samples, d)
    flat = (batch * d * n_samples, d)
    y_flat = y_draws.unsqueeze(1).expand(batch, d, n_samples).reshape(-1)
    ones = torch.ones_like(y_flat, dtype=torch.bool)
    q_with = model.encode(x_with.reshape(flat), mask_with.reshape(flat))
    q_with_y = model.encode(x_with.reshape(flat), mask_with.reshape(flat), y_flat, ones)
    q_base = model.encode(x, mask)  # (batch, latent)
    x_rep = x.unsqueeze(1).expand(batch, n_samples, d).reshape(-1, d)
    mask_rep = mask.unsqueeze(1).expand(batch, n_samples, d).reshape(-1, d)
    q_base_y = model.encode(x_rep, mask_rep, y_draws.reshape(-1), torch.ones(batch * n_samples, dtype=torch.bool,
                                                                              device=x.device))
    latent = q_base.mean.shape[-1]

    def view(q: DiagonalGaussian, shape) -> DiagonalGaussian:
        return DiagonalGaussian(q.mean.reshape(*shape, latent), q.std.reshape(*shape, latent))

    gain_x = view(q_with, (batch, d, n_samples)).kl(view(q_base, (batch, 1, 1)))
    gain_xy = view(q_with_y, (batch, d, n_samples)).kl(view(q_base_y, (batch, 1, n_samples)))
    return (gain_x - gain_xy).mean(-1)


# -- predicting y ---------------------------------------------------------------------------------------------------
@dataclass
class TargetPrediction:
    """What the model says of y after a step, per row: the point prediction (mean, or most probable
    class), −log p(y_true | x_O) under the mixture over draws, and the error (absolute error in model
    units, or 0/1 for a wrong class); the last two are NaN where y is unknown."""

    point: torch.Tensor
    nll: torch.Tensor
    error: torch.Tensor


def predict_target(model, draws: JointDraws, y: torch.Tensor | None) -> TargetPrediction:
    nan = torch.full(draws.y.shape[:1], float("nan"), dtype=draws.y.dtype, device=draws.y.device)
    s = draws.y.shape[-1]
    if model.target_kind == "categorical":
        probs = draws.predictive.mean(-2)  # (batch, C)
        point = probs.argmax(-1).to(draws.y.dtype)
        if y is None:
            return TargetPrediction(point, nan, nan)
        nll = -probs.gather(-1, y.long().clamp_min(0).unsqueeze(-1)).squeeze(-1).clamp_min(1e-12).log()
        return TargetPrediction(point, nll, (point != y).to(point.dtype))
    means = draws.predictive[..., 0]  # (batch, S)
    point = means.mean(-1)
    if y is None:
        return TargetPrediction(point, nan, nan)
    sigma = model.target_sigma
    log_density = -0.5 * (((y.unsqueeze(-1) - means) / sigma) ** 2 + math.log(2 * math.pi)) - math.log(sigma)
    nll = -(torch.logsumexp(log_density, -1) - math.log(s))
    return TargetPrediction(point, nll, (point - y).abs())


# -- the SAIA loop -------------------------------------------------------------------------------------------------
@dataclass
class AcquisitionRun:
    """A SAIA run over ``batch`` rows with D features, as numpy arrays (step t = t features acquired):

    ``observed`` (D+1, batch, D) — the mask before each prediction;
    ``rewards`` (D, batch, D) — every candidate's reward at each step (NaN for features already
    observed or not available); ``acquired`` (D, batch) — the feature taken (−1 once none is left);
    ``y_samples`` (D+1, batch, S) — draws of p(y | x_O); ``y_point``, ``y_nll``, ``error`` (D+1, batch);
    ``imputed_mean``, ``imputed_low``, ``imputed_high`` (D+1, batch, D) — the mean and the 5 %/95 %
    quantiles of p(x_j | x_O) per feature (the observed value where x_j is observed)."""

    strategy: str
    observed: np.ndarray
    rewards: np.ndarray
    acquired: np.ndarray
    y_samples: np.ndarray
    y_point: np.ndarray
    y_nll: np.ndarray
    error: np.ndarray
    imputed_mean: np.ndarray
    imputed_low: np.ndarray
    imputed_high: np.ndarray

    @property
    def n_steps(self) -> int:
        return self.acquired.shape[0]


def acquisition_rewards(model, strategy: str, x: torch.Tensor, mask: torch.Tensor, draws: JointDraws,
                        generator: torch.Generator | None, bins: int = 6, kl_samples: int = 50) -> torch.Tensor:
    """(batch, D) rewards of ``strategy`` (``mi``, ``kl`` or ``random``) given the current mask."""
    if strategy == "mi":
        return mi_rewards(model, draws, bins)
    if strategy == "kl":
        return kl_rewards(model, x, mask, kl_samples, generator)
    if strategy == "random":
        return torch.rand(mask.shape, generator=generator, device=x.device, dtype=x.dtype)
    raise ValueError(f"unknown acquisition strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")


@torch.no_grad()
def run_acquisition(model, x: torch.Tensor, y: torch.Tensor | None, strategy: str, n_samples: int = 200,
                    bins: int = 6, kl_samples: int = 50, available: torch.Tensor | None = None,
                    generator: torch.Generator | None = None) -> AcquisitionRun:
    """SAIA on the rows ``x`` (batch, D) with targets ``y`` (batch,) or None: start with nothing
    observed, acquire the best-rewarded ``available`` feature (default: all), reveal it, repeat until
    none is left. Predictions at every step use the model's own sampler with ``n_samples`` draws."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown acquisition strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    model.eval()
    batch, d = x.shape
    available = torch.ones_like(x, dtype=torch.bool) if available is None else available.to(torch.bool)
    x = torch.where(available, torch.nan_to_num(x), torch.zeros((), dtype=x.dtype, device=x.device))
    mask = torch.zeros_like(available)
    records: dict[str, list[torch.Tensor]] = {k: [] for k in (
        "observed", "rewards", "acquired", "y_samples", "y_point", "y_nll", "error", "imputed_mean", "imputed_low",
        "imputed_high")}
    rows = torch.arange(batch, device=x.device)
    for step in range(d + 1):
        draws = joint_draws(model, x, mask, n_samples, generator)
        prediction = predict_target(model, draws, y)
        quantiles = torch.quantile(draws.x, torch.tensor([0.05, 0.95], dtype=x.dtype, device=x.device), dim=1)
        records["observed"].append(mask.clone())
        records["y_samples"].append(draws.y)
        records["y_point"].append(prediction.point)
        records["y_nll"].append(prediction.nll)
        records["error"].append(prediction.error)
        records["imputed_mean"].append(torch.where(mask, x, draws.x.mean(1)))
        records["imputed_low"].append(torch.where(mask, x, quantiles[0]))
        records["imputed_high"].append(torch.where(mask, x, quantiles[1]))
        if step == d:
            break
        candidates = available & ~mask
        rewards = acquisition_rewards(model, strategy, x, mask, draws, generator, bins, kl_samples)
        rewards = torch.where(candidates, rewards, torch.full_like(rewards, float("nan")))
        choice = torch.where(candidates, rewards.nan_to_num(nan=-1e30), torch.full_like(rewards, -math.inf)).argmax(-1)
        has_candidate = candidates.any(-1)
        choice = torch.where(has_candidate, choice, torch.full_like(choice, -1))
        records["rewards"].append(rewards)
        records["acquired"].append(choice)
        taken = has_candidate.nonzero().squeeze(-1)
        mask[rows[taken], choice[taken]] = True
    arrays = {k: torch.stack(v).cpu().numpy() for k, v in records.items()}
    return AcquisitionRun(strategy=strategy, **arrays)


def curve_summary(errors: np.ndarray) -> dict[str, list[float]]:
    """Mean ± standard error over rows of a (steps, rows) array, ignoring NaN."""
    mean = np.nanmean(errors, axis=1)
    count = np.sum(np.isfinite(errors), axis=1).clip(min=1)
    se = np.nanstd(errors, axis=1, ddof=1 if errors.shape[1] > 1 else 0) / np.sqrt(count)
    return {"mean": [round(float(v), 5) for v in mean], "se": [round(float(v), 5) for v in np.nan_to_num(se)]}


def curve_area(curve: list[float]) -> float:
    """Area under an error curve over steps 0..D (trapezoid rule, unit spacing)."""
    values = np.asarray(curve, dtype=float)
    return float(np.sum((values[1:] + values[:-1]) / 2.0)) if len(values) > 1 else float(values.sum())
