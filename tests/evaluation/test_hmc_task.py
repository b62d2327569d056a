"""``evaluate --task hmc``: how well a model's trained HMC is tuned, against values computed here."""

from __future__ import annotations

import math

import pytest
import torch

from vizvae.checkpoint import SHIPPED_DIR, load_checkpoint
from vizvae.errors import VizvaeError
from vizvae.evaluation.hmc import hmc_task
from vizvae.kernels.hmc import step_size_growth, under_tuned


def test_growth_is_the_geometric_mean_of_the_ratios_and_under_tuned_needs_both_signs():
    assert step_size_growth(torch.tensor([[2.0, 8.0]]), torch.tensor([[1.0, 2.0]])) == pytest.approx(math.sqrt(8))
    assert under_tuned(0.99, 1.1) and not under_tuned(0.99, 3.0) and not under_tuned(0.7, 1.0)


def test_the_initial_step_sizes_are_drawn_again_exactly():
    """A model built from a shipped config, before any training, holds exactly the φ that
    ``initial_step_sizes`` re-draws from its seed."""
    checkpoint = load_checkpoint(SHIPPED_DIR / "mnist-hmcvae-2d")
    fresh = type(checkpoint.model)(checkpoint.model.config)
    torch.testing.assert_close(fresh.hmc.step_sizes.detach(), fresh.sampler.initial_step_sizes(), rtol=1e-6, atol=0)
    assert not torch.allclose(checkpoint.model.hmc.step_sizes.detach(), fresh.hmc.step_sizes.detach())


def test_the_task_reports_the_sampler_it_measures():
    checkpoint = load_checkpoint(SHIPPED_DIR / "mnist-hmcvae-2d")
    out = hmc_task(checkpoint, {"rows": "12", "chains": "8", "rounds": "2"})
    hyper = checkpoint.model.hmc
    initial = checkpoint.model.sampler.initial_step_sizes()
    assert out["rows"] == 12 and out["mask"] == "protocol"
    assert out["step_size_growth"] == pytest.approx(step_size_growth(hyper.step_sizes.detach(), initial), abs=1e-4)
    assert out["inflation"] == pytest.approx(hyper.inflation.tolist(), abs=1e-4)
    assert 0.0 <= out["acceptance"] <= 1.0 and 0.0 <= out["acceptance_continued"] <= 1.0
    assert out["divergences"] >= 0 and out["ess_per_grad"] > 0 and out["rhat_max"] >= 0.9
    assert out["under_tuned"] == under_tuned(out["acceptance"], out["step_size_growth"])


def test_a_model_without_trained_hmc_is_refused_with_a_message():
    with pytest.raises(VizvaeError, match="no trained HMC"):
        hmc_task(load_checkpoint(SHIPPED_DIR / "mnist-vae-2d"), {})


SHIPPED_HMC_MODELS = sorted(folder.name for folder in SHIPPED_DIR.iterdir() if (folder / "config.json").is_file()
                            and __import__("json").loads((folder / "config.json").read_text())["model"]
                            in ("hmcvae", "hhvae", "hmcvaem", "hhvaem"))


def test_every_shipped_hmc_model_is_listed():
    assert {"mnist-hmcvae", "mnist-hhvae", "mnist-hmcvae-2d", "boston-hhvaem"} <= set(SHIPPED_HMC_MODELS)


@pytest.mark.parametrize("name", SHIPPED_HMC_MODELS)
def test_every_shipped_hmc_model_is_tuned(name):
    """Stage 3 learned the sampler (Fig. 5.8): acceptance in [0.5, 0.9] on fresh test rows, with step
    sizes at least twice their initial U(0.02, 0.05) draw."""
    out = hmc_task(load_checkpoint(SHIPPED_DIR / name), {"rows": "40", "chains": "10", "rounds": "1", "seed": "3"})
    assert 0.5 <= out["acceptance"] <= 0.9, out
    assert out["step_size_growth"] >= 2.0, out
    assert not out["under_tuned"]
