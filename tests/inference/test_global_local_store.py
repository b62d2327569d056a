"""The Global & local page's results in the checkpoint cache (vizvae/inference/global_local_store.py): what
``python -m vizvae precompute`` stores for the first view equals a recomputation at the same seed, a
grid drawn from the stored 8-bit pixels is the same PNG, and new weights are recomputed."""

import shutil

import numpy as np
import pytest
import torch

from vizvae.checkpoint import SHIPPED_DIR, checkpoint_dataset, load_checkpoint, save_checkpoint
from vizvae.inference import cache, global_local_store as store
from vizvae.inference.global_local import random_batch_centre
from vizvae.train.precompute import precompute
from vizvae.viz.images import grid_png


@pytest.fixture()
def shipped_copy(tmp_path, monkeypatch):
    """The shipped shapes UG-VAE (K = 3: the smallest) copied out of assets/ without its stored results."""
    source = SHIPPED_DIR / "shapes-ugvae"
    if not (source / "model.safetensors").is_file():
        pytest.skip("shapes-ugvae is not built")
    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path / "user"))
    folder = tmp_path / "shapes-ugvae"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns(cache.PRECOMPUTED))
    return load_checkpoint(folder, device="cpu")


def refuse():
    raise AssertionError("recomputed although stored")


def test_the_stored_first_view_equals_a_recomputation(shipped_copy, monkeypatch):
    files = precompute(shipped_copy.path, ["global_local"], log=lambda line: None)
    assert len(files) == 3 and all(f.parent == shipped_copy.path / "precomputed" for f in files)
    model, dataset = shipped_copy.model, checkpoint_dataset(shipped_copy.config)
    kinds = store.default_batch_kinds(dataset.preprocessing.get("domains", []))
    assert kinds == ["even", "odd", "random"]
    fresh = store.batch_study(model, dataset, kinds, **store.DEFAULT_BATCHES)
    monkeypatch.setattr(store, "batch_study", lambda *args, **kwargs: refuse())
    stored, hit = store.cached_batch_study(shipped_copy.path, model, dataset, kinds, **store.DEFAULT_BATCHES)
    assert hit
    for name in ("kinds", "rows", "mean", "std"):
        np.testing.assert_array_equal(getattr(stored.shown, name), getattr(fresh.shown, name))
    assert stored.shown.rows.dtype == fresh.shown.rows.dtype == np.int64
    assert [rule.label for rule in stored.shown.rules] == [rule.label for rule in fresh.shown.rules]
    assert [p.name for p in stored.problems] == [p.name for p in fresh.problems] == ["without_random", "selected"]
    assert stored.accuracies == fresh.accuracies  # SVMAccuracy dataclasses: classifier, train and test accuracy
    for cluster in range(model.clusters):
        decoded = store.grid_decoded(model, cluster, **store.DEFAULT_GRID)
        from_file = store.stored_grid(shipped_copy.path, cluster, **store.DEFAULT_GRID)
        assert from_file.shape == decoded.shape == (7, 7, 32 * 32)
        np.testing.assert_allclose(from_file, decoded, atol=0.5 / 255 + 1e-6)  # 8 bits, rounded
        assert grid_png(from_file, (1, 32, 32)) == grid_png(decoded, (1, 32, 32))
    centre = store.cached_batch_centre(shipped_copy.path, model, dataset.x_test)
    np.testing.assert_array_equal(centre.numpy(), random_batch_centre(model, dataset.x_test).numpy())


def test_only_the_first_view_is_read_from_the_stored_grids(shipped_copy):
    precompute(shipped_copy.path, ["global_local"], log=lambda line: None)
    first = dict(store.DEFAULT_GRID)
    assert store.stored_grid(shipped_copy.path, 0, **first) is not None
    assert store.stored_grid(shipped_copy.path, 0, **{**first, "steps": 9}) is None
    assert store.stored_grid(shipped_copy.path, 0, **first, around_prior=False) is None
    assert store.stored_grid(shipped_copy.path, 0, **first, beta_dim=0, z_dim=0) is None
    assert store.stored_grid(shipped_copy.path, 3, **first) is None  # K = 3: no cluster 3
    assert store.stored_grid(None, 0, **first) is None


def test_new_weights_are_recomputed(shipped_copy):
    model, dataset = shipped_copy.model, checkpoint_dataset(shipped_copy.config)
    kinds = ["even", "odd"]
    view = dict(store.DEFAULT_BATCHES, n_batches=10, batch_size=16)
    store.cached_batch_study(shipped_copy.path, model, dataset, kinds, **view, precomputed=True)
    cache.store_arrays(shipped_copy.path, store.GRIDS, store.DEFAULT_GRID, {"pixels": store.default_grids(model)},
                       precomputed=True)
    assert store.cached_batch_study(shipped_copy.path, model, dataset, kinds, **view)[1]
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01)
    save_checkpoint(model, shipped_copy.path, name=shipped_copy.name, dataset=shipped_copy.config.get("dataset"))
    assert store.stored_grid(shipped_copy.path, 0, **store.DEFAULT_GRID) is None  # stale: not drawn
    again, hit = store.cached_batch_study(shipped_copy.path, model, dataset, kinds, **view)
    assert not hit
    fresh = store.batch_study(model, dataset, kinds, **view)
    np.testing.assert_array_equal(again.shown.mean, fresh.shown.mean)
