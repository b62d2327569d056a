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
compared on the same predictions. All of it is batched: rows × strategies walk through their
acquisitions together (``run_acquisitions``), each with its own mask, and every step scores all of its
candidates in one call (rows × candidates × draws stacked).

For a model that samples by tuned HMC the chains are carried from step to step (``SequentialPosterior``):
the observed set only grows, so step t's chains are a warm start for step t + 1 — reweighted by the
likelihood of the newly acquired feature, resampled and moved by a few HMC transitions (IBIS, Chopin
2002) — instead of T fresh transitions from the encoder at every step. Step 0 (nothing observed) is the
same for every strategy and computed once.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from vizvae.kernels.hmc import HMCState, hmc_init, hmc_sample
from vizvae.models.capabilities import TunedHMCModel
from vizvae.models.distributions import DiagonalGaussian
from vizvae.inference.imputation import resampled_draws

Progress = Callable[[float, "str | None"], None]  # (fraction done, message); may raise to cancel
HMC_MOVES = 2  # HMC transitions per step that move the warm-started chains (see SequentialPosterior)

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
def draws_given_latents(model, x: torch.Tensor, mask: torch.Tensor, eps: torch.Tensor,
                        generator: torch.Generator | None) -> JointDraws:
    """x_s ~ p(x | ε_s) (the observed values kept) and y_s ~ p(y | x̂_s, h_1(ε_s)) for ε (batch, S, latent)."""
    x_draws = model.decode(eps).sample(generator)
    x_draws = torch.where(mask.unsqueeze(-2), x.unsqueeze(-2), x_draws)
    predictive = model.predict_y(x.unsqueeze(-2), mask.unsqueeze(-2), eps)
    return JointDraws(x_draws, target_draws(model, predictive, generator), predictive)


@torch.no_grad()
def joint_draws(model, x: torch.Tensor, mask: torch.Tensor, n_samples: int, generator: torch.Generator | None = None,
                encoder_only: bool = False) -> JointDraws:
    """ε from the model's own sampler (or the Gaussian encoder with ``encoder_only``), then decode."""
    if encoder_only:
        eps = model.encode(x, mask).rsample(n_samples, generator).transpose(0, 1)
    else:
        eps = resampled_draws(model.posterior_draws(x, mask, n_samples, generator), generator)
    return draws_given_latents(model, x, mask, eps.detach(), generator)


# -- p(ε | x_O) along a run: warm-started HMC chains ------------------------------------------------------------
def systematic_resample(log_weights: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Indices (batch, S) of S draws by systematic resampling of S weighted ones per row (log_weights
    (batch, S), unnormalised). Equal weights give every index exactly once, so nothing is lost."""
    log_weights = torch.nan_to_num(log_weights, nan=-math.inf)
    log_weights = torch.where(torch.isfinite(log_weights).any(-1, keepdim=True), log_weights,
                              torch.zeros_like(log_weights))  # no finite weight: keep the draws as they are
    cdf = torch.softmax(log_weights, -1).cumsum(-1)
    cdf[..., -1] = 1.0
    batch, s = log_weights.shape
    u = (torch.rand((batch, 1), generator=generator, device=cdf.device, dtype=cdf.dtype)
         + torch.arange(s, device=cdf.device, dtype=cdf.dtype)) / s
    return torch.searchsorted(cdf, u.contiguous()).clamp_max(s - 1)


def _gather_chains(state: HMCState, index: torch.Tensor) -> HMCState:
    position = state.position.gather(1, index.unsqueeze(-1).expand_as(state.position))
    grad = state.grad.gather(1, index.unsqueeze(-1).expand_as(state.grad))
    return HMCState(position, state.logdensity.gather(1, index), grad)


def posterior_logdensity(model, x: torch.Tensor, mask: torch.Tensor):
    """ε (batch, S, latent) -> log p(x_O, ε) (batch, S): the target of the model's HMC, y unobserved."""
    x_rows, mask_rows = x.unsqueeze(-2), mask.unsqueeze(-2)
    return lambda eps: model.log_joint(x_rows, mask_rows, eps)


def advance_chains(logdensity_fn, state: HMCState, step_sizes: torch.Tensor, n_leapfrog: int,
                   generator: torch.Generator | None) -> HMCState:
    """Chains at p_old(ε) (``state``, log-densities of the old target cached) -> chains at p_new(ε) ∝
    ``logdensity_fn``: weight each chain by p_new / p_old, resample, then len(``step_sizes``) HMC
    transitions that leave p_new invariant (IBIS, Chopin 2002: one data-tempering step of an SMC sampler).

    Valid because SAIA's observed set only grows: with O' = O ∪ {i} and x's columns independent given ε,
    p(ε | x_O') ∝ p(ε | x_O) p(x_i | ε), so the weights are exactly p(x_i | ε) and the old chains cover
    the new target (it is the old one narrowed). Rows whose mask did not change get equal weights and
    keep their chains. The cached log-density is re-evaluated once under the new target (the only
    gradient evaluation besides the moves)."""
    moved = hmc_init(state.position, logdensity_fn)
    index = systematic_resample(moved.logdensity - state.logdensity, generator)
    moved = _gather_chains(moved, index)
    return hmc_sample(logdensity_fn, moved, step_sizes, n_leapfrog, generator=generator).state


class SequentialPosterior:
    """Draws of p(ε | x_O) for each mask of a run, in order; the mask only grows from call to call.

    A model that samples by tuned HMC starts with its own q^(T) (T transitions from the inflated
    encoder) at the first mask, then carries its chains: each later call reweights, resamples and moves
    them by ``moves`` transitions with the last ``moves`` of the trained step sizes (those tuned for chains
    already near the posterior) — see ``advance_chains``. Other models draw afresh from their own sampler,
    which costs one encoder pass."""

    def __init__(self, model, x: torch.Tensor, n_samples: int, generator: torch.Generator | None,
                 moves: int = HMC_MOVES):
        self.model, self.x, self.n_samples, self.generator = model, x, n_samples, generator
        self.moves = moves
        self.chains: HMCState | None = None  # (batch, S, latent) at the last mask

    @property
    def warm(self) -> bool:
        return isinstance(self.model, TunedHMCModel) and self.moves > 0

    def draws(self, mask: torch.Tensor) -> torch.Tensor:
        """(batch, S, latent) draws for ``mask`` (batch, D), which contains the previous call's mask."""
        if not self.warm:
            return resampled_draws(self.model.posterior_draws(self.x, mask, self.n_samples, self.generator),
                                   self.generator).detach()
        if self.chains is None:
            self.chains = self.model.posterior_samples(self.x, mask, n_chains=self.n_samples,
                                                       generator=self.generator).state
        else:
            hmc = self.model.hmc
            step_sizes = hmc.step_sizes.detach()[-self.moves:]
            self.chains = advance_chains(posterior_logdensity(self.model, self.x, mask), self.chains, step_sizes,
                                         hmc.n_leapfrog, self.generator)
        return self.chains.position

    def repeat(self, times: int) -> None:
        """Stack ``times`` copies of the rows (strategy-major), chains included."""
        self.x = self.x.repeat(times, 1)
        if self.chains is not None:
            self.chains = HMCState(*(t.repeat(times, *([1] * (t.dim() - 1))) for t in self.chains))


@contextmanager
def intra_op_threads(n: int):
    """Run torch ops of this thread on ``n`` intra-op threads, then restore the count. A run's tensors
    are small (hundreds of chains × a few hundred units), so splitting each op over threads only adds
    synchronisation — on a busy 2-core machine that made a row 10–20× slower. With torch's OpenMP
    backend the count belongs to the calling thread, so a background job leaves the others alone."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
    draws = joint_draws(model, x, mask, n_samples, generator, encoder_only=True)
    return kl_rewards_from_draws(model, x, mask, draws)


@torch.no_grad()
def kl_rewards_from_draws(model, x: torch.Tensor, mask: torch.Tensor, draws: JointDraws,
                          candidates: Sequence[int] | None = None) -> torch.Tensor:
    """EDDI's reward of each candidate feature (default: all D) from encoder draws of (x, y) given x_O:
    (batch, candidates). Every (row, candidate, draw) is encoded in one call."""
    batch, d = x.shape
    n_samples = draws.y.shape[-1]
    chosen = torch.arange(d, device=x.device) if candidates is None else torch.as_tensor(candidates, device=x.device)
    c = len(chosen)
    one_hot = torch.zeros((c, d), dtype=torch.bool, device=x.device)
    one_hot[torch.arange(c, device=x.device), chosen] = True
    # x with candidate i set to its s-th draw: (batch, candidates, S, D)
    x_with = torch.where(one_hot.view(1, c, 1, d), draws.x.unsqueeze(1), x.view(batch, 1, 1, d))
    mask_with = (mask.view(batch, 1, 1, d) | one_hot.view(1, c, 1, d)).expand(batch, c, n_samples, d)
    flat = (batch * c * n_samples, d)
    y_flat = draws.y.unsqueeze(1).expand(batch, c, n_samples).reshape(-1)
    ones = torch.ones_like(y_flat, dtype=torch.bool)
    q_with = model.encode(x_with.reshape(flat), mask_with.reshape(flat))
    q_with_y = model.encode(x_with.reshape(flat), mask_with.reshape(flat), y_flat, ones)
    q_base = model.encode(x, mask)  # (batch, latent)
    x_rep = x.unsqueeze(1).expand(batch, n_samples, d).reshape(-1, d)
    mask_rep = mask.unsqueeze(1).expand(batch, n_samples, d).reshape(-1, d)
    q_base_y = model.encode(x_rep, mask_rep, draws.y.reshape(-1), torch.ones(batch * n_samples, dtype=torch.bool,
                                                                              device=x.device))
    latent = q_base.mean.shape[-1]

    def view(q: DiagonalGaussian, shape) -> DiagonalGaussian:
        return DiagonalGaussian(q.mean.reshape(*shape, latent), q.std.reshape(*shape, latent))

    gain_x = view(q_with, (batch, c, n_samples)).kl(view(q_base, (batch, 1, 1)))
    gain_xy = view(q_with_y, (batch, c, n_samples)).kl(view(q_base_y, (batch, 1, n_samples)))
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


def _record_step(records: dict[str, list[torch.Tensor]], model, x: torch.Tensor, y: torch.Tensor | None,
                 mask: torch.Tensor, draws: JointDraws) -> None:
    """What a step shows: the mask, p(y | x_O) and the imputations with their 5 %/95 % quantiles."""
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


def _choose(records: dict[str, list[torch.Tensor]], rewards: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Record the candidates' rewards and the argmax of each row (−1 where none is left); returns it."""
    rewards = torch.where(candidates, rewards, torch.full_like(rewards, float("nan")))
    choice = torch.where(candidates, rewards.nan_to_num(nan=-1e30), torch.full_like(rewards, -math.inf)).argmax(-1)
    choice = torch.where(candidates.any(-1), choice, torch.full_like(choice, -1))
    records["rewards"].append(rewards)
    records["acquired"].append(choice)
    return choice


def _stacked_rewards(model, strategies: Sequence[str], batch: int, x: torch.Tensor, mask: torch.Tensor,
                     draws: JointDraws, generator: torch.Generator | None, bins: int, kl_samples: int) -> torch.Tensor:
    """(strategies × batch, D) rewards: each strategy scores its own block of rows."""
    blocks = []
    for k, strategy in enumerate(strategies):
        rows = slice(k * batch, (k + 1) * batch)
        block = JointDraws(draws.x[rows], draws.y[rows], draws.predictive[rows])
        blocks.append(acquisition_rewards(model, strategy, x[rows], mask[rows], block, generator, bins, kl_samples))
    return torch.cat(blocks)


@torch.no_grad()
def run_acquisitions(model, x: torch.Tensor, y: torch.Tensor | None, strategies: Sequence[str] = STRATEGIES,
                     n_samples: int = 200, bins: int = 6, kl_samples: int = 50, available: torch.Tensor | None = None,
                     generator: torch.Generator | None = None, moves: int = HMC_MOVES,
                     progress: Progress | None = None) -> dict[str, AcquisitionRun]:
    """SAIA on the rows ``x`` (batch, D) with targets ``y`` (batch,) or None, under each of ``strategies``
    at once: start with nothing observed, acquire the best-rewarded ``available`` feature (default: all),
    reveal it, repeat until none is left. Predictions at every step use the model's own sampler with
    ``n_samples`` draws, warm-started from the step before (``SequentialPosterior``, ``moves`` HMC
    transitions a step; 0: T fresh transitions every step). The strategies' rows are stacked into one
    batch; step 0 (nothing observed) is shared by all of them. ``progress(fraction, message)`` is called
    after every step (an exception it raises stops the run)."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise ValueError(f"unknown acquisition strategy {unknown or strategies!r}; expected some of "
                         f"{', '.join(STRATEGIES)}")
    model.eval()
    with intra_op_threads(1):
        return _run_stacked(model, x, y, tuple(strategies), n_samples, bins, kl_samples, available, generator,
                            moves, progress)


def _run_stacked(model, x: torch.Tensor, y: torch.Tensor | None, strategies: tuple[str, ...], n_samples: int,
                 bins: int, kl_samples: int, available: torch.Tensor | None, generator: torch.Generator | None,
                 moves: int, progress: Progress | None) -> dict[str, AcquisitionRun]:
    batch, d = x.shape
    n_strategies = len(strategies)
    available = torch.ones_like(x, dtype=torch.bool) if available is None else available.to(torch.bool)
    x = torch.where(available, torch.nan_to_num(x), torch.zeros((), dtype=x.dtype, device=x.device))
    posterior = SequentialPosterior(model, x, n_samples, generator, moves)
    mask = torch.zeros_like(available)
    first = draws_given_latents(model, x, mask, posterior.draws(mask), generator)  # step 0: the same for all
    posterior.repeat(n_strategies)
    x, available, mask = (t.repeat(n_strategies, 1) for t in (x, available, mask))
    y = None if y is None else y.repeat(n_strategies)
    draws = JointDraws(*(t.repeat(n_strategies, *([1] * (t.dim() - 1))) for t in (first.x, first.y, first.predictive)))
    records: dict[str, list[torch.Tensor]] = {k: [] for k in (
        "observed", "rewards", "acquired", "y_samples", "y_point", "y_nll", "error", "imputed_mean", "imputed_low",
        "imputed_high")}
    rows = torch.arange(batch * n_strategies, device=x.device)
    for step in range(d + 1):
        if step > 0:
            draws = draws_given_latents(model, x, mask, posterior.draws(mask), generator)
        _record_step(records, model, x, y, mask, draws)
        if progress is not None:
            progress((step + 1) / (d + 1), f"step {step} of {d}")
        if step == d:
            break
        rewards = _stacked_rewards(model, strategies, batch, x, mask, draws, generator, bins, kl_samples)
        choice = _choose(records, rewards, available & ~mask)
        taken = (choice >= 0).nonzero().squeeze(-1)
        mask[rows[taken], choice[taken]] = True
    arrays = {k: torch.stack(v).cpu().numpy() for k, v in records.items()}
    return {strategy: AcquisitionRun(strategy=strategy, **{k: v[:, k_index * batch:(k_index + 1) * batch]
                                                           for k, v in arrays.items()})
            for k_index, strategy in enumerate(strategies)}


def run_acquisition(model, x: torch.Tensor, y: torch.Tensor | None, strategy: str, n_samples: int = 200,
                    bins: int = 6, kl_samples: int = 50, available: torch.Tensor | None = None,
                    generator: torch.Generator | None = None, moves: int = HMC_MOVES) -> AcquisitionRun:
    """``run_acquisitions`` with one strategy."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown acquisition strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    return run_acquisitions(model, x, y, (strategy,), n_samples, bins, kl_samples, available, generator, moves)[strategy]


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
