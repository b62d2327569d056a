"""2-D projections (vizvae/inference/projection.py): PCA against a known low-rank answer, and the disk cache."""

import numpy as np
import pytest
import torch

from vizvae.checkpoint import save_checkpoint
from vizvae.inference import projection
from vizvae.inference.cache import checkpoint_sha256
from vizvae.inference.projection import Projection, pca, project
from vizvae.models import VAE, VAEConfig


def low_rank(n=400, seed=0):
    """Points on a 2-D plane embedded in 10-D, with variances 9 and 1 along the plane."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(10, 2)))
    scores = rng.normal(size=(n, 2)) * np.array([3.0, 1.0])
    return scores @ basis.T + 5.0, scores


def test_pca_recovers_the_variance_of_a_low_rank_set():
    x, scores = low_rank()
    result = pca(x)
    assert result.coords.shape == (400, 2)
    # all the variance lives in two components, split as the sample variances of the scores
    np.testing.assert_allclose(result.explained_variance_ratio.sum(), 1.0, atol=1e-9)
    sample = np.linalg.eigvalsh(np.cov(scores.T))[::-1]
    np.testing.assert_allclose(result.coords.var(0, ddof=1), sample, rtol=1e-4)
    np.testing.assert_allclose(result.explained_variance_ratio, sample / sample.sum(), rtol=1e-4)
    # distances within the plane are preserved exactly
    d_in = np.linalg.norm(x[:50, None] - x[None, :50], axis=-1)
    d_out = np.linalg.norm(result.coords[:50, None] - result.coords[None, :50], axis=-1)
    np.testing.assert_allclose(d_out, d_in, rtol=1e-4, atol=1e-4)


def test_pca_of_a_1d_latent_pads_the_second_axis():
    x = np.linspace(-1, 1, 20)[:, None]
    result = pca(x)
    assert result.coords.shape == (20, 2) and np.all(result.coords[:, 1] == 0)


@pytest.fixture()
def counting(monkeypatch):
    calls = []

    def fake_umap(x, seed=0):
        calls.append(seed)
        rng = np.random.default_rng(seed)
        return Projection(rng.normal(size=(len(x), 2)).astype(np.float32), "umap")

    monkeypatch.setitem(projection.METHODS, "umap", fake_umap)
    return calls


@pytest.fixture()
def checkpoint(tmp_path, monkeypatch):
    """A small VAE saved as a user's checkpoint, with the user cache in tmp_path/user."""
    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path / "user"))
    return save_tiny_vae(tmp_path / "model", seed=0)


def save_tiny_vae(folder, seed):
    torch.manual_seed(seed)
    model = VAE(VAEConfig(input_shape=(1, 4, 4), latent_dim=2, hidden_dims=(4,)))
    return save_checkpoint(model, folder, name="tiny", dataset={"name": "none"})


def stored_files(root):
    return sorted(p.name for p in root.rglob("*.npz"))


def test_cache_round_trip_is_identical_and_not_recomputed(checkpoint, tmp_path, counting):
    x = np.random.default_rng(1).normal(size=(300, 16)).astype(np.float32)
    first = project(x, "umap", folder=checkpoint, seed=0)
    assert not first.from_cache and counting == [0]
    second = project(x, "umap", folder=checkpoint, seed=0)
    assert second.from_cache and counting == [0]
    np.testing.assert_array_equal(first.coords, second.coords)
    # another seed or another data size is another entry, in the user cache of these weights
    project(x, "umap", folder=checkpoint, seed=1)
    project(x[:100], "umap", folder=checkpoint, seed=0)
    assert len(counting) == 3
    assert len(stored_files(tmp_path / "user" / checkpoint_sha256(checkpoint))) == 3
    assert not (checkpoint / "cache").exists() and not (checkpoint / "precomputed").exists()


def test_a_retrained_checkpoint_is_recomputed(checkpoint, counting):
    x = np.zeros((10, 3), dtype=np.float32)
    project(x, "umap", folder=checkpoint)
    save_tiny_vae(checkpoint, seed=1)  # new weights in the same folder
    again = project(x, "umap", folder=checkpoint)
    assert not again.from_cache and len(counting) == 2


def test_a_stale_shipped_file_is_ignored(checkpoint, tmp_path, counting, monkeypatch):
    """A file in precomputed/ stamped with other weights is recomputed, never shown."""
    x = np.zeros((10, 3), dtype=np.float32)
    project(x, "umap", folder=checkpoint, precomputed=True)
    assert stored_files(checkpoint / "precomputed") != [] and counting == [0]
    assert project(x, "umap", folder=checkpoint).from_cache  # shipped: read, not computed
    save_tiny_vae(checkpoint, seed=1)
    again = project(x, "umap", folder=checkpoint)
    assert not again.from_cache and len(counting) == 2


def test_a_damaged_cache_file_is_recomputed(checkpoint, tmp_path, counting):
    x = np.zeros((10, 3), dtype=np.float32)
    project(x, "umap", folder=checkpoint)
    (file,) = (tmp_path / "user").rglob("*.npz")
    file.write_bytes(b"garbage")
    again = project(x, "umap", folder=checkpoint)
    assert not again.from_cache and len(counting) == 2
    assert project(x, "umap", folder=checkpoint).from_cache


def test_pca_is_never_cached(checkpoint, tmp_path):
    project(np.eye(5), "pca", folder=checkpoint)
    assert not (tmp_path / "user").exists()


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown projection"):
        project(np.eye(3), "mds")


def test_stored_tsne_equals_a_recomputation_at_the_same_seed(checkpoint):
    x = np.random.default_rng(2).normal(size=(60, 4)).astype(np.float32)
    stored = project(x, "tsne", folder=checkpoint, seed=3)
    read = project(x, "tsne", folder=checkpoint, seed=3)
    fresh = project(x, "tsne", seed=3)  # no folder: no cache
    assert read.from_cache and not fresh.from_cache
    np.testing.assert_array_equal(read.coords, stored.coords)
    np.testing.assert_allclose(read.coords, fresh.coords, rtol=1e-5, atol=1e-4)


def test_real_tsne_separates_two_clusters():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, size=(40, 5)), rng.normal(5, 0.1, size=(40, 5))]).astype(np.float32)
    coords = project(x, "tsne", seed=0).coords
    a, b = coords[:40].mean(0), coords[40:].mean(0)
    spread = max(coords[:40].std(0).max(), coords[40:].std(0).max())
    assert np.linalg.norm(a - b) > 3 * spread
