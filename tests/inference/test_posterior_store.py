"""The Posterior page's results in the checkpoint cache (vizvae/inference/posterior_store.py):
what the builder stores equals a recomputation at the same seed, and new weights are recomputed."""

import functools
import shutil

import numpy as np
import pytest
import torch

from vizvae.checkpoint import SHIPPED_DIR, load_checkpoint, save_checkpoint
from vizvae.inference import cache, posterior_store
from vizvae.inference import gaps as gaps_module
from vizvae.inference.posterior import chain_diagnostics, posterior_chains, posterior_grid

VIEW = {"image": 3, "mask_spec": ("half", "top", 0.0), "seed": 2, "n_chains": 10, "scale": 1.0}


@pytest.fixture()
def shipped_copy(tmp_path, monkeypatch):
    """The shipped 2-D VAE copied out of assets/, treated as shipped (its precomputed/ is read)."""
    source = SHIPPED_DIR / "mnist-vae-2d"
    if not (source / "model.safetensors").is_file():
        pytest.skip("mnist-vae-2d is not built")
    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path / "user"))
    folder = tmp_path / "mnist-vae-2d"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns(cache.PRECOMPUTED))
    # the gaps at a fraction of the page's effort: the store is under test here, not the estimators
    monkeypatch.setattr(gaps_module, "posterior_gaps", CHEAP_GAPS)
    return load_checkpoint(folder, device="cpu")


CHEAP_GAPS = functools.partial(gaps_module.posterior_gaps, ks=(1, 10, 100), n_elbo_samples=100, n_steps=20)


def test_stored_posterior_equals_a_recomputation(shipped_copy):
    files = posterior_store.store_default_posterior(shipped_copy, **VIEW)
    assert len(files) == 4 and all(f.parent == shipped_copy.path / "precomputed" for f in files)
    target = posterior_store.posterior_target(shipped_copy, VIEW["image"], VIEW["mask_spec"])
    chains = posterior_chains(target, n_chains=10, seed=2)
    grid = posterior_grid(target)
    gaps = CHEAP_GAPS(target, hmc_samples=chains.samples, log_evidence_quadrature=grid.log_evidence, seed=2)
    params = posterior_store.posterior_params(3, VIEW["mask_spec"], 2, 10, 1.0)

    def refuse():
        raise AssertionError("recomputed although stored")

    stored_chains, hit = posterior_store.cached_posterior_result("posterior-chains", shipped_copy.path, params, refuse)
    assert hit
    for name in ("chain", "acceptance_probs", "divergences", "energies"):
        np.testing.assert_array_equal(getattr(stored_chains.result, name), getattr(chains.result, name))
    np.testing.assert_array_equal(stored_chains.step_sizes, chains.step_sizes)
    assert (stored_chains.trained, stored_chains.n_leapfrog) == (chains.trained, chains.n_leapfrog)
    stored_grid, _ = posterior_store.cached_posterior_result(
        "posterior-grid", shipped_copy.path, posterior_store.posterior_params(3, VIEW["mask_spec"]), refuse)
    np.testing.assert_array_equal(stored_grid.log_joint, grid.log_joint)
    assert stored_grid.log_evidence == grid.log_evidence and stored_grid.limits == grid.limits
    stored_gaps, _ = posterior_store.cached_posterior_result("posterior-gaps", shipped_copy.path, params, refuse)
    assert stored_gaps.approximation_gap == pytest.approx(gaps.approximation_gap, abs=1e-9)
    assert stored_gaps.log_evidence_source == gaps.log_evidence_source
    np.testing.assert_array_equal(stored_gaps.iwae, gaps.iwae)
    stored_diagnostics, _ = posterior_store.cached_posterior_result("posterior-diagnostics", shipped_copy.path,
                                                                     params, refuse)
    np.testing.assert_allclose(stored_diagnostics.ess, chain_diagnostics(chains.result).ess)


def test_new_weights_are_recomputed(shipped_copy):
    params = posterior_store.posterior_params(3, VIEW["mask_spec"])
    target = posterior_store.posterior_target(shipped_copy, VIEW["image"], VIEW["mask_spec"])
    calls = []

    def grid():
        calls.append(1)
        return posterior_grid(target)

    posterior_store.cached_posterior_result("posterior-grid", shipped_copy.path, params, grid, precomputed=True)
    assert posterior_store.cached_posterior_result("posterior-grid", shipped_copy.path, params, grid)[1]
    model = shipped_copy.model
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(0.9)
    save_checkpoint(model, shipped_copy.path, name="mnist-vae-2d", dataset=shipped_copy.config["dataset"])
    _, from_cache = posterior_store.cached_posterior_result("posterior-grid", shipped_copy.path, params, grid)
    assert not from_cache and calls == [1, 1]
    assert [f.parent.name for f in cache.prune_stale(shipped_copy.path)] == ["precomputed"]
