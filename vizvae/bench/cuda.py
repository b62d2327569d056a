"""The CUDA figures of ``python -m vizvae bench --only hmc --device cuda --json``:

* ``hmc_gpu_ms`` — ``posterior_samples`` for 100 test images × 100 chains at once (T·LF of the
  shipped HH-VAE), on the GPU, median of ``repeats`` seeded runs, synchronised before and after;
* ``hmc_gemm_roofline_fraction`` — the FLOP/s of that batched run's matrix products (counted
  from the shapes one gradient evaluation multiplies, times the T·LF + 1 evaluations) ÷ the FLOP/s
  of exactly those products launched alone back to back on the same GPU in the same run;
* ``hmc_graph_speedup`` — the same run with the fixed-shape log-density-and-gradient captured by
  ``torch.compile(mode="reduce-overhead")`` (CUDA graphs) ÷ without, when it compiles here;
* ``train_images_per_s_vae16`` / ``train_images_per_s_hhvae`` (and ``train_images_per_s``, the
  first) — one epoch of MNIST through the 16-D VAE's ``fit`` and HH-VAE's Stage 2, bf16 autocast.

They need a CUDA device; without one the benchmark stops with that reason.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch

from vizvae.bench.gemms import gemm_flops, recorded_gemms
from vizvae.checkpoint import checkpoint_dataset, load_checkpoint, resolve_checkpoint
from vizvae.data import protocol_masks
from vizvae.errors import VizvaeError
from vizvae.kernels.hmc import functional_logdensity_and_grad


def require_cuda() -> torch.device:
    if not torch.cuda.is_available():
        raise VizvaeError("--device cuda: this machine has no CUDA device (torch.cuda.is_available() is False), so "
                          "hmc_gpu_ms, hmc_gemm_roofline_fraction and train_images_per_s cannot be measured here")
    return torch.device("cuda")


def gpu_seconds(function: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``function`` with the GPU synchronised around each call (one warm-up)."""
    function()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def hmc_figures(name: str, images: int, chains: int, repeats: int) -> dict[str, Any]:
    device = require_cuda()
    checkpoint = load_checkpoint(resolve_checkpoint(name), device=device)
    model = checkpoint.model
    dataset = checkpoint_dataset(checkpoint.config)
    x = torch.as_tensor(dataset.x_test[:images]).to(device, non_blocking=True)
    mask, _ = protocol_masks(len(x), x.shape[1], "test", torch.Generator(device=device).manual_seed(0), device)
    hmc = model.hmc
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        with torch.no_grad():
            proposal = model.encode(x, mask)
        logdensity = model.posterior_logdensity(x, mask)
        functional = functional_logdensity_and_grad(logdensity)
        position = hmc.initial_proposal_sample(proposal.mean, proposal.std, chains,
                                               torch.Generator(device=device).manual_seed(4))
        calls = recorded_gemms(functional, position.detach())
        evaluations = hmc.n_transitions * hmc.n_leapfrog + 1

        def sampling(fn=functional) -> Callable[[], object]:
            return lambda: hmc.sample(logdensity, proposal.mean, proposal.std, chains,
                                      generator=torch.Generator(device=device).manual_seed(5), logdensity_and_grad_fn=fn)

        inputs = [(getattr(torch, op), [torch.randn(shape, device=device) for shape in shapes]) for op, shapes in calls]

        def gemms_alone() -> None:
            for _ in range(evaluations):
                for op, tensors in inputs:
                    op(*tensors)

        run_s = gpu_seconds(sampling(), repeats)
        gemm_s = gpu_seconds(gemms_alone, repeats)
        figures = {"hmc_gpu_ms": round(1000 * run_s, 2), "hmc_gemm_roofline_fraction": round(gemm_s / run_s, 3),
                   "hmc_gpu_transition_tflops": round(gemm_flops(calls) * evaluations / run_s / 1e12, 3),
                   "hmc_gpu_images": int(len(x)), "hmc_gpu_chains": chains, "hmc_gpu_name": torch.cuda.get_device_name()}
        figures.update(graph_speedup(functional, sampling, run_s, repeats))
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return figures


def graph_speedup(functional, sampling, run_s: float, repeats: int) -> dict[str, Any]:
    """The batched run again with the gradient function captured as CUDA graphs by ``torch.compile``."""
    try:
        compiled = torch.compile(functional, mode="reduce-overhead", fullgraph=False)
        graph_s = gpu_seconds(sampling(compiled), repeats)
    except Exception as err:  # a compiler that cannot handle this graph here: say so, measure the rest
        return {"hmc_graph_speedup": None, "hmc_graph_note": f"torch.compile failed: {type(err).__name__}"}
    return {"hmc_graph_speedup": round(run_s / graph_s, 3)}


def training_figures() -> dict[str, Any]:
    """Images per second over one epoch of MNIST: the 16-D VAE (``fit``) and HH-VAE (Stage 2)."""
    from vizvae.data import load_dataset
    from vizvae.models import MODEL_REGISTRY, VAE, VAEConfig
    from vizvae.train.loop import TrainSettings, fit
    from vizvae.train.stages import StageSettings, train_vi_stage

    device = require_cuda()
    dataset = load_dataset("mnist", binarize=True)
    epoch = len(dataset.x_train) // 128
    figures: dict[str, Any] = {}
    vae = VAE(VAEConfig(input_shape=tuple(dataset.image_shape), latent_dim=16)).to(device)
    fit(vae, dataset, TrainSettings(steps=20, eval_rows=10))  # warm-up: kernels, allocator
    torch.cuda.synchronize()
    start = time.perf_counter()
    fit(vae, dataset, TrainSettings(steps=epoch, eval_rows=10, eval_every=10 ** 6))
    torch.cuda.synchronize()
    figures["train_images_per_s_vae16"] = round(epoch * 128 / (time.perf_counter() - start), 1)
    cls = MODEL_REGISTRY["hhvae"]
    hhvae = cls(cls.config_class(input_shape=tuple(dataset.image_shape), target="categorical", n_classes=10)).to(device)
    train_vi_stage(hhvae, dataset, StageSettings(steps=20, eval_rows=10))
    torch.cuda.synchronize()
    start = time.perf_counter()
    train_vi_stage(hhvae, dataset, StageSettings(steps=epoch, eval_rows=10))
    torch.cuda.synchronize()
    figures["train_images_per_s_hhvae"] = round(epoch * 128 / (time.perf_counter() - start), 1)
    figures["train_images_per_s"] = figures["train_images_per_s_vae16"]
    return figures
