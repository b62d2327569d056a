"""HMC over the shipped HH-VAE's posterior (T = 10, LF = 5): cost model and speed.

``python -m vizvae bench --only hmc --json [-o model=mnist-hhvae] [-o chains=100] [-o images=100]
[-o repeats=7] [-o threads=N]``

* ``hmc_grad_evals_per_transition`` — counted calls of the log-density (each one gradient
  evaluation) per transition, init excluded: must be exactly LF.
* ``hmc_extra_forwards_per_transition`` — decoder forward passes beyond those gradient
  evaluations, per transition (counted with a hook on the decoder's first layer): 0.
* ``hmc_overhead_ratio`` — a whole HMC run from the inflated encoder proposal (T·LF + 1
  evaluations) ÷ the same run's T·LF gradient evaluations of the same log-density on the same
  (1 image × chains) batch, replayed back to back; median of the ratios of interleaved (ABBA)
  pairs, wall clock.
  1.02 is the floor (the init). ``hmc_overhead_ratio_cpu``: the same in process CPU time, which
  is what to trust on a machine shared with other jobs (wall-clock pairs then swing ±40 %).
* ``hmc_image_ms`` — ``posterior_samples`` for one image and ``chains`` chains, encoder included.
* ``hmc_chains_per_s`` — chain transitions per second for ``images`` images × ``chains`` chains.
* ``hmc_roofline_fraction`` — the FLOP/s a T-transition run achieves (its matrix products' FLOPs,
  counted, over its time) ÷ the FLOP/s of exactly those matrix products run alone back to back
  (same shapes, same run, paired): 1 would mean nothing but the GEMMs costs time. The run samples
  as the app does at inference, weights frozen and gradients by ``torch.func``
  (``functional_logdensity_and_grad``); ``hmc_roofline_fraction_autograd`` is the same with
  ``torch.autograd.grad``, and ``hmc_functional_speedup`` autograd time ÷ torch.func time.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from vizvae.bench.gemms import gemm_flops, recorded_gemms
from vizvae.bench.timing import paired_ratio
from vizvae.checkpoint import checkpoint_dataset, load_checkpoint, resolve_checkpoint
from vizvae.data import protocol_masks
from vizvae.kernels.hmc import LogDensityCounter, functional_logdensity_and_grad, logdensity_and_grad

def gemms_alone(calls: list[tuple[str, list[tuple[int, ...]]]], times: int):
    """A function that runs the recorded products ``times`` over on fresh inputs of their shapes."""
    inputs = [(getattr(torch, name), [torch.randn(shape) for shape in shapes]) for name, shapes in calls]

    def run() -> None:
        for _ in range(times):
            for op, tensors in inputs:
                op(*tensors)

    return run


def cost_model(model, x: torch.Tensor, mask: torch.Tensor, proposal, n_chains: int) -> dict[str, Any]:
    """Counted log-density calls and decoder forwards per transition of one seeded HMC run."""
    hmc = model.hmc
    decoder_forwards = [0]
    hook = model.decoder.body[0].register_forward_hook(lambda *_: decoder_forwards.__setitem__(0, decoder_forwards[0] + 1))
    counter = LogDensityCounter(model.posterior_logdensity(x, mask))
    result = hmc.sample(counter, proposal.mean, proposal.std, n_chains, generator=torch.Generator().manual_seed(1))
    hook.remove()
    return {
        "hmc_grad_evals_per_transition": (counter.n_calls - 1) / hmc.n_transitions,  # the 1: hmc_init's start
        "hmc_extra_forwards_per_transition": (decoder_forwards[0] - counter.n_calls) / hmc.n_transitions,
        "hmc_acceptance": round(result.acceptance_rate(), 3),
    }


def overhead(model, x: torch.Tensor, mask: torch.Tensor, proposal, n_chains: int, repeats: int) -> dict[str, Any]:
    """A whole HMC run ÷ its own T·LF gradient evaluations replayed back to back (wall and CPU time).

    The decoder's cost depends a little on where it is evaluated (sigmoids of confident logits),
    so the baseline evaluates exactly the positions a seeded run visits; every timed run is
    re-seeded and follows that same trajectory. What remains is the kernel's own overhead."""
    hmc = model.hmc
    logdensity = model.posterior_logdensity(x, mask)
    visited: list[torch.Tensor] = []

    def recording(z: torch.Tensor) -> torch.Tensor:
        visited.append(z.detach().clone())
        return logdensity(z)

    hmc.sample(recording, proposal.mean, proposal.std, n_chains, generator=torch.Generator().manual_seed(2))
    leapfrog_positions = visited[1:]  # T·LF of them; the first was hmc_init's

    def hmc_run():
        hmc.sample(logdensity, proposal.mean, proposal.std, n_chains, generator=torch.Generator().manual_seed(2))

    def bare_gradients():
        for position in leapfrog_positions:
            logdensity_and_grad(position, logdensity)

    hmc_s, bare_s, ratio = paired_ratio(hmc_run, bare_gradients, repeats=repeats)
    hmc_cpu_s, bare_cpu_s, ratio_cpu = paired_ratio(hmc_run, bare_gradients, repeats=repeats, clock=time.process_time)
    return {
        "hmc_overhead_ratio": round(ratio, 3),
        "hmc_overhead_ratio_cpu": round(ratio_cpu, 3),
        "hmc_run_ms": round(1000 * hmc_s, 1),
        "hmc_bare_gradients_ms": round(1000 * bare_s, 1),
        "hmc_run_cpu_ms": round(1000 * hmc_cpu_s, 1),
        "hmc_bare_gradients_cpu_ms": round(1000 * bare_cpu_s, 1),
    }


def roofline(model, x: torch.Tensor, mask: torch.Tensor, proposal, n_chains: int, repeats: int) -> dict[str, Any]:
    """``hmc_roofline_fraction`` and kin (see the module docstring), weights frozen while sampling."""
    hmc = model.hmc
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        logdensity = model.posterior_logdensity(x, mask)
        functional = functional_logdensity_and_grad(logdensity)
        position = hmc.initial_proposal_sample(proposal.mean, proposal.std, n_chains, torch.Generator().manual_seed(4))
        calls = recorded_gemms(functional, position.detach())
        evaluations = hmc.n_transitions * hmc.n_leapfrog + 1

        def run(fn=None):
            return lambda: hmc.sample(logdensity, proposal.mean, proposal.std, n_chains,
                                      generator=torch.Generator().manual_seed(5), logdensity_and_grad_fn=fn)

        gemms = gemms_alone(calls, evaluations)
        run_s, gemm_s, ratio = paired_ratio(run(functional), gemms, repeats=repeats)
        autograd_calls = recorded_gemms(lambda z: logdensity_and_grad(z, logdensity), position.detach())
        _, _, autograd_ratio = paired_ratio(run(None), gemms_alone(autograd_calls, evaluations),
                                                                   repeats=repeats)
        _, _, speedup = paired_ratio(run(None), run(functional), repeats=repeats)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    flops = gemm_flops(calls) * evaluations
    return {
        "hmc_roofline_fraction": round(1.0 / ratio, 3),
        "hmc_roofline_fraction_autograd": round(1.0 / autograd_ratio, 3),
        "hmc_functional_speedup": round(speedup, 3),
        "hmc_transition_gflops": round(flops / run_s / 1e9, 2),
        "hmc_gemm_alone_gflops": round(flops / gemm_s / 1e9, 2),
        "hmc_gemms_per_gradient": len(calls),
    }


def end_to_end(model, x_all: torch.Tensor, mask_all: torch.Tensor, n_chains: int, repeats: int) -> dict[str, Any]:
    """``posterior_samples`` for the first image (median over seeds), then for all of them at once."""
    image_times = []
    for seed in range(repeats):
        start = time.perf_counter()
        model.posterior_samples(x_all[:1], mask_all[:1], n_chains=n_chains, generator=torch.Generator().manual_seed(seed))
        image_times.append(time.perf_counter() - start)
    start = time.perf_counter()
    model.posterior_samples(x_all, mask_all, n_chains=n_chains, generator=torch.Generator().manual_seed(3))
    batch_s = time.perf_counter() - start
    return {
        "hmc_image_ms": round(1000 * statistics.median(image_times), 1),
        "hmc_chains_per_s": round(len(x_all) * n_chains * model.hmc.n_transitions / batch_s, 1),
        "hmc_batch_images": int(len(x_all)),
    }


def run(options: dict[str, Any]) -> dict[str, Any]:
    on_cuda = str(options.get("device", "cpu")) == "cuda"
    if on_cuda:
        from vizvae.bench.cuda import require_cuda

        require_cuda()  # before minutes of CPU figures
    if options.get("threads"):
        torch.set_num_threads(int(options["threads"]))
    checkpoint = load_checkpoint(resolve_checkpoint(options.get("model", "mnist-hhvae")), device="cpu")
    model = checkpoint.model
    n_chains = int(options.get("chains", 100))
    repeats = int(options.get("repeats", 25))
    dataset = checkpoint_dataset(checkpoint.config)
    x_all = torch.as_tensor(dataset.x_test[: int(options.get("images", 100))])
    mask_all, _ = protocol_masks(len(x_all), x_all.shape[1], "test", torch.Generator().manual_seed(0))
    x, mask = x_all[:1], mask_all[:1]  # one MNIST test image, half its pixels hidden
    with torch.no_grad():
        proposal = model.encode(x, mask)
    counted = cost_model(model, x, mask, proposal, n_chains)
    figures = {
        "hmc_model": checkpoint.name,
        "hmc_T": model.hmc.n_transitions,
        "hmc_LF": model.hmc.n_leapfrog,
        "hmc_chains": n_chains,
        "hmc_threads": torch.get_num_threads(),
        **{k: v for k, v in counted.items() if k != "hmc_acceptance"},
        **overhead(model, x, mask, proposal, n_chains, repeats),
        **roofline(model, x, mask, proposal, n_chains, repeats),
        **end_to_end(model, x_all, mask_all, n_chains, repeats),
        "hmc_acceptance": counted["hmc_acceptance"],
    }
    if on_cuda:
        from vizvae.bench.cuda import hmc_figures, training_figures

        figures.update(hmc_figures(checkpoint.name, len(x_all), n_chains, max(3, repeats // 3)))
        figures.update(training_figures())
    return figures
