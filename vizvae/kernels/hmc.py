"""Hamiltonian Monte Carlo over latent variables (thesis §5.1.3, eqs 5.1–5.2).

The sampler has the BlackJAX shape, in torch: ``hmc_init(position, logdensity_fn)`` builds an
``HMCState`` and ``hmc_step(state, ...)`` returns ``(HMCState, HMCInfo)``. Everything is batched
over leading dimensions: a position is ``(..., dim)``, typically ``(batch, chains, latent)``, and
``logdensity_fn`` maps it to ``(...)`` in one call.

Cost model. The state caches log p*(z) and ∇ log p*(z) of its position, so a transition with LF
leapfrog steps costs exactly LF gradient evaluations — one ``autograd.grad`` of the *summed*
log-density (the chains are independent, so the gradient of the sum is the per-chain gradient)
— and no extra forward passes for the energies. A T-transition run costs T·LF + 1 evaluations
(the +1 is ``hmc_init``). The thesis' "2TL" (§5.2.7) counts decoding and differentiation apart.

A caller may pass ``logdensity_and_grad_fn``, a position -> (log p*, ∇ log p*) callable made once
(``functional_logdensity_and_grad``: ``torch.func.grad_and_value``, optionally compiled), to
replace the autograd call in plain sampling. ``hmc_sample(..., diagnostics="summary")`` keeps
per-transition means over the chains instead of the (T, chains) diagnostic arrays.

Devices and randomness: tensors are created on the device and dtype of the inputs; every
random draw takes an explicit ``torch.Generator`` (on that same device) or ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, NamedTuple, Sequence

import torch
from torch import Tensor

LogDensityFn = Callable[[Tensor], Tensor]  # (..., dim) -> (...), unnormalised log p*(z)
LogDensityAndGradFn = Callable[[Tensor], tuple[Tensor, Tensor]]  # (..., dim) -> ((...), (..., dim))

__all__ = [
    "LogDensityFn",
    "LogDensityAndGradFn",
    "functional_logdensity_and_grad",
    "HMCState",
    "HMCInfo",
    "HMCResult",
    "HMCHyperparameters",
    "LogDensityCounter",
    "logdensity_and_grad",
    "hmc_init",
    "sample_momentum",
    "kinetic_energy",
    "leapfrog",
    "hmc_step",
    "hmc_sample",
    "init_step_sizes",
    "step_size_growth",
    "under_tuned",
    "layer_slices_from_sizes",
    "zero_non_finite",
    "scrub_non_finite_grads",
]


class HMCState(NamedTuple):
    """Where a chain is, with the log-density and its gradient cached so no step recomputes them."""

    position: Tensor  # (..., dim)
    logdensity: Tensor  # (...)
    grad: Tensor  # (..., dim)  ∇_z log p*(z)


class HMCInfo(NamedTuple):
    """What a person diagnosing one transition wants to see (all detached, shape ``(...)``).

    ``energy`` is the Hamiltonian H(z, r) (eq. 5.2) of the *returned* state: the proposal's (at
    the end of the trajectory) when accepted, the starting point's with its freshly drawn momentum
    when rejected — the quantity energy diagnostics such as E-BFMI are built from.
    ``energy_error`` is H(proposal) − H(start); it is kept as computed, so it may be non-finite
    for a divergent transition (the returned state never is).
    """

    acceptance_prob: Tensor  # min(1, exp(H_start − H_proposal)); 0 when divergent
    is_accepted: Tensor  # bool
    is_divergent: Tensor  # bool
    energy: Tensor
    energy_error: Tensor
    # differentiable runs only: log P(the accept/reject decision taken), *in* the autograd graph
    # (log α when accepted, log(1 − α) when rejected, 0 for a divergence, which is always rejected)
    log_decision_prob: Tensor | None = None


class LogDensityCounter:
    """Wraps a log-density and counts its calls; inside HMC each call is one gradient evaluation.

    Used by tests and benchmarks to check the cost model (T·LF + 1 evaluations per run).
    """

    def __init__(self, logdensity_fn: LogDensityFn) -> None:
        self.logdensity_fn = logdensity_fn
        self.n_calls = 0

    def __call__(self, position: Tensor) -> Tensor:
        self.n_calls += 1
        return self.logdensity_fn(position)


def logdensity_and_grad(
    position: Tensor, logdensity_fn: LogDensityFn, create_graph: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """One gradient evaluation: returns ``(position, logdensity, grad)``.

    With ``create_graph=False`` everything returned is detached (plain sampling). With
    ``create_graph=True`` the log-density and the gradient stay in the autograd graph, so a loss of
    later states can be differentiated through the leapfrog updates (second order, as in
    Campbell et al. 2021); a position that does not require grad is made a leaf that does.
    """
    with torch.enable_grad():
        if create_graph and position.requires_grad:
            position_in = position.view_as(position)  # a node of its own, so the hook below is ours
        else:
            position_in = position.detach().requires_grad_(True)
        logdensity = logdensity_fn(position_in)
        if logdensity.shape != position_in.shape[:-1]:
            raise ValueError(
                f"logdensity_fn must map (..., dim) to (...): got {tuple(logdensity.shape)} "
                f"for a position of shape {tuple(position_in.shape)}"
            )
        if logdensity.requires_grad:
            # Chains are independent, so ∇ of the sum is the per-chain gradient: one backward pass.
            (grad,) = torch.autograd.grad(
                logdensity.sum(), position_in, create_graph=create_graph, allow_unused=True
            )
        else:
            grad = None
        if create_graph:
            # A divergent chain evaluates log p* where it overflows; backward through that evaluation
            # gives 0 · inf = NaN even though the chain is rejected, and since the step sizes are shared
            # by all chains one NaN would void their whole gradient. Only that chain's entries are hit
            # (chains are independent) and its true contribution is 0: zero them there. Registered
            # after the score is taken, so the score itself is left as computed.
            position_in.register_hook(zero_non_finite)
    if grad is None:  # log-density constant in z
        grad = torch.zeros_like(position_in)
    if not create_graph:
        return position_in.detach(), logdensity.detach(), grad.detach()
    return position_in, logdensity, grad


def functional_logdensity_and_grad(logdensity_fn: LogDensityFn, compile: bool = False) -> LogDensityAndGradFn:
    """``logdensity_fn`` as a position -> (log p*, ∇ log p*) function by ``torch.func.grad_and_value``
    of the summed log-density (chains are independent), the per-chain values carried as its aux.
    For sampling only (nothing stays in a graph); with ``compile`` the pair is ``torch.compile``d."""

    def summed(position: Tensor) -> tuple[Tensor, Tensor]:
        values = logdensity_fn(position)
        return values.sum(), values

    grad_and_value = torch.func.grad_and_value(summed, has_aux=True)

    def both(position: Tensor) -> tuple[Tensor, Tensor]:
        grad, (_, values) = grad_and_value(position.detach())
        return values.detach(), grad.detach()

    return torch.compile(both, dynamic=False) if compile else both


def _evaluate(position: Tensor, logdensity_fn: LogDensityFn, create_graph: bool,
              logdensity_and_grad_fn: LogDensityAndGradFn | None) -> tuple[Tensor, Tensor, Tensor]:
    """One gradient evaluation by the caller's ``logdensity_and_grad_fn`` when given (plain
    sampling), else by autograd (``logdensity_and_grad``)."""
    if logdensity_and_grad_fn is None or create_graph:
        return logdensity_and_grad(position, logdensity_fn, create_graph)
    logdensity, grad = logdensity_and_grad_fn(position)
    return position.detach(), logdensity, grad


def zero_non_finite(grad: Tensor) -> Tensor:
    """``grad`` with every NaN and ±inf entry set to 0 (a new tensor)."""
    return torch.where(torch.isfinite(grad), grad, torch.zeros((), dtype=grad.dtype, device=grad.device))


def scrub_non_finite_grads(parameters: Iterable[Tensor]) -> None:
    """Set the non-finite entries of each parameter's ``.grad`` to 0, in place.

    A divergent chain is rejected in the forward pass, but 0 · NaN can still reach the backward
    pass through it; its true contribution is 0, so drop such entries rather than poison the
    optimiser's state (every trainer of HMC hyper-parameters calls this before its step)."""
    for parameter in parameters:
        if parameter.grad is not None:
            torch.nan_to_num_(parameter.grad, nan=0.0, posinf=0.0, neginf=0.0)


def hmc_init(position: Tensor, logdensity_fn: LogDensityFn, create_graph: bool = False,
             logdensity_and_grad_fn: LogDensityAndGradFn | None = None) -> HMCState:
    """Evaluate log p* and its gradient once at the starting positions ``(..., dim)``.

    A start where log p* is not finite can never leave (every proposal's energy error is then
    non-finite, i.e. divergent): start chains where the target is defined.
    """
    return HMCState(*_evaluate(position, logdensity_fn, create_graph, logdensity_and_grad_fn))


def _as_inverse_mass(inverse_mass: Tensor | float | None, like: Tensor) -> Tensor:
    if inverse_mass is None:
        return torch.ones((), device=like.device, dtype=like.dtype)
    return torch.as_tensor(inverse_mass, device=like.device, dtype=like.dtype)


def sample_momentum(
    shape: Sequence[int] | torch.Size,
    inverse_mass: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """r ~ N(0, M) with diagonal M = 1 / inverse_mass: ``randn / sqrt(inverse_mass)``."""
    noise = torch.randn(
        tuple(shape), generator=generator, device=inverse_mass.device, dtype=inverse_mass.dtype
    )
    return noise * torch.rsqrt(inverse_mass)


def kinetic_energy(momentum: Tensor, inverse_mass: Tensor) -> Tensor:
    """½ rᵀ M⁻¹ r for a diagonal mass (eq. 5.2): ``(..., dim) -> (...)``."""
    return 0.5 * (momentum.square() * inverse_mass).sum(-1)


def leapfrog(
    state: HMCState,
    momentum: Tensor,
    logdensity_fn: LogDensityFn,
    step_size: Tensor,
    n_leapfrog: int,
    inverse_mass: Tensor,
    create_graph: bool = False,
    logdensity_and_grad_fn: LogDensityAndGradFn | None = None,
) -> tuple[HMCState, Tensor, Tensor]:
    """``n_leapfrog`` leapfrog steps (eq. 5.1) with per-dimension step sizes ``(..., dim)``.

    Consecutive half momentum steps are merged, so the trajectory costs exactly ``n_leapfrog``
    gradient evaluations; the start's gradient comes from the cached state.

    Returns ``(end_state, end_momentum, diverged)`` with ``diverged`` ``(...)`` bool: True when a
    log-density or gradient met along the trajectory was non-finite; the kernel rejects it. A
    non-finite gradient entry exerts no force (it is zeroed), so the momentum and every later
    position stay finite and ``logdensity_fn`` is never called on a NaN position (a decoder's
    ``torch.distributions`` would raise on one; only a float overflow could still reach ±inf).

    Few tensor ops per step, because at ~100 chains a step's bookkeeping would otherwise rival the
    decoder's gradient: φ ⊙ M⁻¹ is shared by all steps, and divergence is tracked by one running
    sum per chain (NaN and ±inf propagate through it) checked once at the end, not per step.
    """
    position, logdensity, grad = state
    step_over_mass = step_size * inverse_mass
    half_step = 0.5 * step_size
    check = torch.zeros(position.shape[:-1], dtype=position.dtype, device=position.device)
    momentum = torch.addcmul(momentum, half_step, grad)  # r_{l+½}, eq. (5.1)
    for step in range(n_leapfrog):
        proposed = torch.addcmul(position, step_over_mass, momentum)  # z_{l+1} = z_l + φ ⊙ r / M
        position, logdensity, grad = _evaluate(proposed, logdensity_fn, create_graph, logdensity_and_grad_fn)
        check = check + logdensity + grad.sum(-1)
        force = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
        # a full momentum step between positions, the closing half step at the end
        momentum = torch.addcmul(momentum, step_size if step < n_leapfrog - 1 else half_step, force)
    diverged = ~torch.isfinite(check.detach())
    return HMCState(position, logdensity, grad), momentum, diverged


def hmc_step(
    state: HMCState,
    logdensity_fn: LogDensityFn,
    step_size: Tensor | float,
    n_leapfrog: int,
    inverse_mass: Tensor | float | None = None,
    generator: torch.Generator | None = None,
    differentiable: bool = False,
    divergence_threshold: float = 1000.0,
    logdensity_and_grad_fn: LogDensityAndGradFn | None = None,
) -> tuple[HMCState, HMCInfo]:
    """One HMC transition: fresh momentum, ``n_leapfrog`` leapfrog steps, Metropolis accept.

    ``step_size`` broadcasts to ``(..., dim)`` (scalar, per dimension, or per chain and dimension);
    ``inverse_mass`` is the diagonal of M⁻¹, broadcastable to ``(..., dim)`` (``None``: identity).

    The momentum is not negated at the end of the trajectory: the flip only makes the proposal an
    involution for the detailed-balance proof, and since the Gaussian kinetic energy is symmetric
    and the momentum is redrawn at the next transition it changes neither H nor the chain.

    The proposal is accepted with probability min(1, exp(H_start − H_proposal)) (eqs 5.1–5.2).
    A divergence — a non-finite energy error, one above ``divergence_threshold``, or a trajectory
    that met a non-finite value — is rejected and flagged; the returned state is selected with
    ``torch.where``, so non-finite proposals never leak into it.

    ``differentiable=True`` keeps the leapfrog updates in the autograd graph (``create_graph``),
    so a loss of the returned state has gradients w.r.t. ``step_size`` and the start position
    (eq. 5.9). The state is ``where(accepted, proposal, current)``, whose pathwise gradient is that
    of the branch taken; the discrete decision's own dependence on φ is returned as
    ``info.log_decision_prob`` (log α or log(1 − α), in the graph) for a score-function term.
    Dropping that term (as Campbell et al. 2021 do) biases the gradient towards smaller steps: at
    stationarity, where E[log p*(z_T)] does not depend on φ at all, the pathwise part alone is
    clearly negative once acceptance falls below ~0.95 (``stein.hmc_training_losses`` adds it).
    """
    position = state.position
    if not differentiable and any(t.requires_grad for t in state):
        state = HMCState(*(t.detach() for t in state))
    inverse_mass_t = _as_inverse_mass(inverse_mass, position)
    step_size_t = torch.as_tensor(step_size, device=position.device, dtype=position.dtype)
    if not differentiable and step_size_t.requires_grad:
        step_size_t = step_size_t.detach()
    batch_shape = position.shape[:-1]

    momentum = sample_momentum(position.shape, inverse_mass_t, generator)
    energy_start = torch.sub(kinetic_energy(momentum, inverse_mass_t), state.logdensity)  # eq. (5.2)
    proposal, proposal_momentum, trajectory_diverged = leapfrog(
        state, momentum, logdensity_fn, step_size_t, n_leapfrog, inverse_mass_t, differentiable,
        logdensity_and_grad_fn,
    )
    energy_proposal = torch.sub(kinetic_energy(proposal_momentum, inverse_mass_t), proposal.logdensity)

    energy_error = (energy_proposal - energy_start).detach()
    # NaN and +inf fail "<=" (−inf cannot occur: a +inf log-density already marks the trajectory)
    is_divergent = trajectory_diverged | ~(energy_error <= divergence_threshold)
    acceptance_prob = torch.where(is_divergent, 0.0, torch.exp(torch.clamp(-energy_error, max=0.0)))
    uniform = torch.rand(
        batch_shape, generator=generator, device=position.device, dtype=position.dtype
    )
    is_accepted = uniform < acceptance_prob  # never true when the probability is 0

    keep = is_accepted.unsqueeze(-1)
    new_state = HMCState(
        position=torch.where(keep, proposal.position, state.position),
        logdensity=torch.where(is_accepted, proposal.logdensity, state.logdensity),
        grad=torch.where(keep, proposal.grad, state.grad),
    )
    energy = torch.where(is_accepted, energy_proposal, energy_start).detach()
    log_decision = _log_decision_prob(energy_proposal - energy_start, is_accepted, is_divergent) \
        if differentiable else None
    info = HMCInfo(acceptance_prob, is_accepted, is_divergent, energy, energy_error, log_decision)
    return new_state, info


def _log_decision_prob(energy_error: Tensor, is_accepted: Tensor, is_divergent: Tensor) -> Tensor:
    """log P(decision) with gradients through the energy error ΔH: log α = min(0, −ΔH) when
    accepted, log(1 − α) when rejected; 0 (a sure rejection) for a divergent or non-finite one."""
    finite = ~is_divergent & torch.isfinite(energy_error)
    safe_error = torch.where(finite, energy_error, torch.zeros_like(energy_error))
    log_alpha = torch.clamp(-safe_error, max=0.0)
    # a rejection needs α < 1, i.e. ΔH > 0; clamp keeps log(1 − α) finite where that cannot happen
    log_reject = torch.log(-torch.expm1(torch.clamp(log_alpha, max=-1e-6)))
    chosen = torch.where(is_accepted, log_alpha, log_reject)
    return torch.where(finite, chosen, torch.zeros_like(chosen))


@dataclass
class HMCResult:
    """A run of T transitions over chains of shape ``(..., dim)``.

    ``chain`` (only with ``record_chain``) holds the T+1 positions including the start, detached,
    for animation; the per-transition diagnostics are ``(T, ...)`` and detached.
    """

    state: HMCState
    acceptance_probs: Tensor  # (T, ...)
    is_accepted: Tensor  # (T, ...) bool
    divergences: Tensor  # (T, ...) bool
    energies: Tensor  # (T, ...) H of the state after each transition (see HMCInfo)
    energy_errors: Tensor  # (T, ...)
    chain: Tensor | None = None  # (T+1, ..., dim)
    log_decision_probs: Tensor | None = None  # (T, ...) in the graph, differentiable runs only
    # diagnostics="summary": every diagnostic is (T,), a mean over the chains (divergences: a count,
    # is_accepted: the accepted fraction), so memory does not grow with T × chains
    summary: bool = False

    @property
    def samples(self) -> Tensor:
        """The final positions ``(..., dim)`` — draws from q^(T)."""
        return self.state.position

    @property
    def n_transitions(self) -> int:
        return self.acceptance_probs.shape[0]

    def mean_acceptance(self) -> Tensor:
        """Mean acceptance probability per transition, over all chains: ``(T,)``."""
        return self.acceptance_probs.reshape(self.n_transitions, -1).mean(-1)

    def acceptance_rate(self) -> float:
        """Mean acceptance probability over all transitions and chains (Fig. 5.8a)."""
        return float(self.acceptance_probs.mean())

    def n_divergences(self) -> int:
        """Number of divergent (and therefore rejected) transitions over all chains."""
        return int(self.divergences.sum())


DIAGNOSTICS = ("full", "summary")


def _summarised(info: HMCInfo) -> HMCInfo:
    """One transition's diagnostics reduced over the chains (see ``HMCResult.summary``)."""
    return HMCInfo(info.acceptance_prob.mean(), info.is_accepted.to(info.acceptance_prob.dtype).mean(),
                   info.is_divergent.sum(), info.energy.mean(),
                   info.energy_error.where(torch.isfinite(info.energy_error), torch.nan).nanmean())  # finite ones


def hmc_sample(
    logdensity_fn: LogDensityFn,
    initial_position: Tensor | HMCState,
    step_sizes: Tensor,
    n_leapfrog: int = 5,
    inverse_mass: Tensor | float | None = None,
    generator: torch.Generator | None = None,
    record_chain: bool = False,
    differentiable: bool = False,
    divergence_threshold: float = 1000.0,
    logdensity_and_grad_fn: LogDensityAndGradFn | None = None,
    diagnostics: str = "full",
) -> HMCResult:
    """Run T = ``step_sizes.shape[0]`` HMC transitions from ``initial_position`` ``(..., dim)``.

    ``step_sizes`` is φ ∈ R^{T×dim} (§5.2.5): row t is the step size of transition t, broadcast to
    ``(..., dim)`` — ``(T, dim)`` per dimension, ``(T, 1)`` a scalar per transition, or
    ``(T, ..., dim)`` per chain. Passing an ``HMCState`` continues a chain without re-evaluating
    its start; a position costs one extra evaluation (T·LF + 1 in all).

    ``logdensity_and_grad_fn`` replaces autograd in a non-differentiable run (see the module
    docstring). ``diagnostics="summary"`` keeps only per-transition means over the chains (memory
    O(T) instead of five (T, chains) arrays; ``HMCResult.summary``); ``"full"`` keeps them all.
    """
    if diagnostics not in DIAGNOSTICS:
        raise ValueError(f"diagnostics must be one of {DIAGNOSTICS}, got {diagnostics!r}")
    if differentiable and logdensity_and_grad_fn is not None:
        raise ValueError("logdensity_and_grad_fn is for plain sampling; a differentiable run needs autograd")
    if isinstance(initial_position, HMCState):
        state = initial_position
    else:
        state = hmc_init(initial_position, logdensity_fn, create_graph=differentiable,
                         logdensity_and_grad_fn=logdensity_and_grad_fn)
    n_transitions = step_sizes.shape[0]
    chain = [state.position.detach()] if record_chain else None
    infos: list[HMCInfo] = []
    for t in range(n_transitions):
        state, info = hmc_step(
            state,
            logdensity_fn,
            step_sizes[t],
            n_leapfrog,
            inverse_mass=inverse_mass,
            generator=generator,
            differentiable=differentiable,
            divergence_threshold=divergence_threshold,
            logdensity_and_grad_fn=logdensity_and_grad_fn,
        )
        infos.append(_summarised(info) if diagnostics == "summary" and not differentiable else info)
        if chain is not None:
            chain.append(state.position.detach())

    summary = diagnostics == "summary" and not differentiable
    batch_shape = () if summary else state.position.shape[:-1]
    device, dtype = state.position.device, state.position.dtype

    def stack(values: list[Tensor], empty_dtype: torch.dtype) -> Tensor:
        if not values:
            return torch.empty((0, *batch_shape), device=device, dtype=empty_dtype)
        return torch.stack(values)

    return HMCResult(
        state=state,
        acceptance_probs=stack([i.acceptance_prob for i in infos], dtype),
        is_accepted=stack([i.is_accepted for i in infos], dtype if summary else torch.bool),
        divergences=stack([i.is_divergent for i in infos], torch.long if summary else torch.bool),
        energies=stack([i.energy for i in infos], dtype),
        energy_errors=stack([i.energy_error for i in infos], dtype),
        chain=torch.stack(chain) if chain is not None else None,
        log_decision_probs=stack([i.log_decision_prob for i in infos], dtype) if differentiable else None,
        summary=summary,
    )


UNDER_TUNED_ACCEPTANCE = 0.95
UNDER_TUNED_GROWTH = 1.5


def step_size_growth(trained: torch.Tensor, initial: torch.Tensor) -> float:
    """Geometric mean of trained ÷ initial step sizes."""
    return float(torch.exp((trained.log() - initial.log()).mean()))


def under_tuned(acceptance: float, growth: float) -> bool:
    """Acceptance over 0.95 while the step sizes stayed near their start: the sampler creeps."""
    return acceptance > UNDER_TUNED_ACCEPTANCE and growth < UNDER_TUNED_GROWTH


def init_step_sizes(
    n_transitions: int,
    dim: int,
    low: float = 0.02,
    high: float = 0.05,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Initial step sizes φ ~ U(low, high), shape ``(T, dim)``.

    The default range [0.02, 0.05] is the authors' code; the thesis text (§5.4.6) says
    U(0.05, 0.2). Small initial steps keep early acceptance high while the decoder is still poor.
    """
    if device is None and torch.get_default_device().type == "meta":  # a model built for its shapes alone
        return torch.empty((n_transitions, dim), dtype=dtype)  # (vizvae.checkpoint): no values to draw
    uniform = torch.rand((n_transitions, dim), generator=generator, device=device, dtype=dtype)
    return low + (high - low) * uniform


def _meta_like(tensor: Tensor) -> Tensor:
    """A fresh meta tensor of ``tensor``'s shape and dtype, made by a factory (no meta kernel runs)."""
    return torch.empty(tuple(tensor.shape), dtype=tensor.dtype, device="meta")


def layer_slices_from_sizes(latent_sizes: Sequence[int]) -> list[slice]:
    """``[10, 5] -> [slice(0, 10), slice(10, 15)]``: latent dimensions of each layer ε_l."""
    slices, start = [], 0
    for size in latent_sizes:
        slices.append(slice(start, start + size))
        start += size
    return slices


class HMCHyperparameters(torch.nn.Module):
    """The trainable HMC hyper-parameters of an HMC-VAE (§5.2.5), as a module a model can own.

    Parameters (both log-parameterised so they stay positive):
    ``log_step_sizes`` ``(T, dim)`` — φ, one step size per transition and dimension;
    ``log_inflation`` ``(L,)`` — log s_l, one inflation per latent layer, widening the initial
    proposal N(μ, s_l·σ) so that the chains are not stuck where the encoder is confident.
    """

    def __init__(
        self,
        dim: int,
        n_transitions: int = 10,
        n_leapfrog: int = 5,
        layer_slices: Sequence[slice] | None = None,
        step_sizes: Tensor | None = None,
        inflation: Tensor | float | Sequence[float] = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if layer_slices is None:
            layer_slices = [slice(0, dim)]
        layer_index = torch.full((dim,), -1, dtype=torch.long, device="cpu")  # checked here, even for a meta build
        for layer, dims in enumerate(layer_slices):
            layer_index[dims] = layer
        if (layer_index < 0).any():
            raise ValueError(f"layer_slices {list(layer_slices)} do not cover all {dim} dimensions")
        if step_sizes is None:
            device = generator.device if generator is not None else None
            step_sizes = init_step_sizes(n_transitions, dim, generator=generator, device=device)
        step_sizes = torch.as_tensor(step_sizes)
        if not step_sizes.is_floating_point():
            step_sizes = step_sizes.to(torch.get_default_dtype())
        if step_sizes.shape != (n_transitions, dim):
            step_sizes = step_sizes.expand(n_transitions, dim)
        if not step_sizes.is_meta and (step_sizes <= 0).any():
            raise ValueError("step sizes must be positive")
        inflation_t = torch.as_tensor(inflation, dtype=step_sizes.dtype, device=step_sizes.device)
        inflation_t = inflation_t.expand(len(layer_slices))
        if not inflation_t.is_meta and (inflation_t <= 0).any():
            raise ValueError("inflation must be positive")

        self.dim = dim
        self.n_leapfrog = n_leapfrog
        self.layer_slices = list(layer_slices)
        # a meta build (shapes only) computes nothing: math on meta tensors loads torch's compiler stack (2 s)
        self.log_step_sizes = torch.nn.Parameter(_meta_like(step_sizes) if step_sizes.is_meta
                                                 else step_sizes.log().clone())  # (T, dim)
        self.log_inflation = torch.nn.Parameter(_meta_like(inflation_t) if inflation_t.is_meta
                                                else inflation_t.log().clone())  # (L,)
        layer_index = layer_index.to(step_sizes.device)  # (dim,)
        self.register_buffer("layer_index", layer_index, persistent=False)

    @property
    def n_transitions(self) -> int:
        return self.log_step_sizes.shape[0]

    @property
    def step_sizes(self) -> Tensor:
        return self.log_step_sizes.exp()  # (T, dim)

    @property
    def inflation(self) -> Tensor:
        return self.log_inflation.exp()  # (L,)

    def inflation_per_dim(self) -> Tensor:
        return self.inflation[self.layer_index]  # (dim,)

    def initial_proposal_sample(
        self,
        proposal_mean: Tensor,
        proposal_std: Tensor,
        n_chains: int,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """ε^(0) ~ N(μ, s_l·σ) per layer, reparameterised so SKSD can train s (eq. 5.10).

        ``proposal_mean``, ``proposal_std``: ``(..., dim)`` (e.g. ``(batch, latent)`` from the
        encoder); returns ``(..., n_chains, dim)``.
        """
        mean = proposal_mean.unsqueeze(-2)  # (..., 1, dim)
        std = proposal_std.unsqueeze(-2)
        shape = (*proposal_mean.shape[:-1], n_chains, proposal_mean.shape[-1])
        noise = torch.randn(shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + self.inflation_per_dim() * std * noise

    def sample(
        self,
        logdensity_fn: LogDensityFn,
        proposal_mean: Tensor,
        proposal_std: Tensor,
        n_chains: int,
        inverse_mass: Tensor | float | None = None,
        generator: torch.Generator | None = None,
        differentiable: bool = False,
        record_chain: bool = False,
        logdensity_and_grad_fn: LogDensityAndGradFn | None = None,
        diagnostics: str = "full",
    ) -> HMCResult:
        """HMC from the inflated proposal: chains ``(..., n_chains, dim)`` → q^(T); the last two
        options as ``hmc_sample``'s."""
        with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
            initial_position = self.initial_proposal_sample(
                proposal_mean, proposal_std, n_chains, generator
            )
            step_sizes = self.step_sizes
        return hmc_sample(
            logdensity_fn,
            initial_position,
            step_sizes,
            n_leapfrog=self.n_leapfrog,
            inverse_mass=inverse_mass,
            generator=generator,
            record_chain=record_chain,
            differentiable=differentiable,
            logdensity_and_grad_fn=logdensity_and_grad_fn,
            diagnostics=diagnostics,
        )

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, n_transitions={self.n_transitions}, n_leapfrog={self.n_leapfrog}, "
            f"layers={len(self.layer_slices)}"
        )
