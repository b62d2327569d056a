"""The CUDA path: HMC on the GPU leaves a known Gaussian invariant without one host synchronisation
inside the leapfrog loop, bf16 training of a VAE and of a staged HMC model (Stage 3 in float32)
learns, and the GPU benchmark prints its figures. On a machine without CUDA these skip, saying so."""

from __future__ import annotations

import math

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device on this machine: the CUDA path was not exercised here")

MEAN = torch.tensor([1.0, -2.0, 0.5])
STD = torch.tensor([0.5, 1.0, 3.0])


def test_hmc_on_the_gpu_leaves_a_gaussian_invariant_without_host_syncs():
    from vizvae.inference.targets import gaussian_logdensity
    from vizvae.kernels.hmc import hmc_sample

    device = torch.device("cuda")
    mean, std = MEAN.to(device), STD.to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    n = 4000
    start = mean + std * torch.randn(n, 3, generator=generator, device=device)
    step_sizes = torch.full((20, 3), 0.3, device=device)
    target = gaussian_logdensity(mean, std)
    hmc_sample(target, start, step_sizes, n_leapfrog=5, generator=generator)  # warm-up: lazy CUDA init syncs
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any device -> host synchronisation raises
    try:
        result = hmc_sample(target, start, step_sizes, n_leapfrog=5, generator=generator)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    samples = result.samples.double().cpu()
    assert ((samples.mean(0) - MEAN.double()).abs() < 4 * STD.double() / math.sqrt(n)).all()
    assert ((samples.var(0) - STD.double() ** 2).abs() < 4 * STD.double() ** 2 * math.sqrt(2 / (n - 1))).all()


def test_bf16_training_on_the_gpu_learns(tmp_path):
    from vizvae.data import load_dataset
    from vizvae.models import VAE, VAEConfig
    from vizvae.train.loop import TrainSettings, fit

    dataset = load_dataset("digits", binarize=True)
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=tuple(dataset.image_shape), latent_dim=4, hidden_dims=(64,))).cuda()
    history = fit(model, dataset, TrainSettings(steps=300, batch_size=64, eval_rows=200))
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast, not bf16 weights
    assert history["test_elbo"][-1] > history["test_elbo"][0] + 5.0  # nats: far beyond bf16 rounding


def test_stage_three_runs_on_the_gpu(tmp_path):
    from vizvae.data import load_dataset
    from vizvae.models.base import MODEL_REGISTRY
    from vizvae.train.stages import StageSettings, train_stages

    dataset = load_dataset("digits", binarize=True)
    cls = MODEL_REGISTRY["hhvae"]
    model = cls(cls.config_class(input_shape=tuple(dataset.image_shape), latent_dims=(4, 2), hidden_dims=(32,),
                                 target="categorical", n_classes=10, n_transitions=2, n_leapfrog=2,
                                 sksd_chains=4)).cuda()
    records = train_stages(model, dataset, StageSettings(steps=20, hmc_steps=5, plateau_window=0, batch_size=32,
                                                         hmc_batch_size=4))
    stage3 = records[-1]["history"]
    assert records[-1]["steps"] == 5 and all(math.isfinite(v) for v in stage3["hmc_objective"])
    assert model.hmc.log_step_sizes.dtype == torch.float32


def test_the_gpu_benchmark_prints_its_figures():
    from vizvae.bench.cuda import hmc_figures

    figures = hmc_figures("mnist-hhvae", images=10, chains=10, repeats=2)
    assert figures["hmc_gpu_ms"] > 0 and 0 < figures["hmc_gemm_roofline_fraction"] <= 1.5
