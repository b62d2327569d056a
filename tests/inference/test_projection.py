"""2-D projections (vizvae/inference/projection.py): PCA against a known low-rank answer, and the disk cache."""

import numpy as np
import pytest
import torch

from vizvae.models import VAE, VAEConfig
from vizvae.inference import projection
from vizvae.inference.projection import Projection, cache_folder, pca, project, weights_digest


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


def test_cache_round_trip_is_identical_and_not_recomputed(tmp_path, counting):
    x = np.random.default_rng(1).normal(size=(300, 16)).astype(np.float32)
    first = project(x, "umap", cache_dir=tmp_path, weights_key="abc", seed=0)
    assert not first.from_cache and counting == [0]
    second = project(x, "umap", cache_dir=tmp_path, weights_key="abc", seed=0)
    assert second.from_cache and counting == [0]
    np.testing.assert_array_equal(first.coords, second.coords)
    # another seed or another data size is another entry
    project(x, "umap", cache_dir=tmp_path, weights_key="abc", seed=1)
    project(x[:100], "umap", cache_dir=tmp_path, weights_key="abc", seed=0)
    assert len(counting) == 3
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".npy"] * 3
    # new weights (a retrained checkpoint) are recomputed and replace the stale entries
    project(x, "umap", cache_dir=tmp_path, weights_key="def", seed=0)
    assert len(counting) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["projection-umap-def-n300-seed0.npy"]


def test_a_damaged_cache_file_is_recomputed(tmp_path, counting):
    x = np.zeros((10, 3), dtype=np.float32)
    project(x, "umap", cache_dir=tmp_path, weights_key="k")
    (file,) = tmp_path.iterdir()
    file.write_bytes(b"garbage")
    again = project(x, "umap", cache_dir=tmp_path, weights_key="k")
    assert not again.from_cache and len(counting) == 2
    assert np.load(file).shape == (10, 2)


def test_pca_is_never_cached(tmp_path):
    project(np.eye(5), "pca", cache_dir=tmp_path, weights_key="k")
    assert list(tmp_path.iterdir()) == []


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown projection"):
        project(np.eye(3), "mds")


def test_read_only_checkpoint_falls_back_to_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.setattr(projection, "_writable", lambda folder: False)  # as for a read-only install
    assert cache_folder(tmp_path, "w1") == tmp_path / "user-cache" / "vizvae" / "w1"


def test_cache_folder_prefers_the_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    assert cache_folder(tmp_path, "w1") == tmp_path / "cache"
    assert cache_folder(tmp_path / "gone", "w1") == tmp_path / "user-cache" / "vizvae" / "w1"
    assert not (tmp_path / "gone").exists()


def test_weights_digest_changes_with_the_weights():
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 4, 4), latent_dim=2, hidden_dims=(4,)))
    before = weights_digest(model)
    assert before == weights_digest(model) and len(before) == 16
    with torch.no_grad():
        next(model.parameters())[0, 0] += 1.0
    assert weights_digest(model) != before


def test_real_tsne_separates_two_clusters():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, size=(40, 5)), rng.normal(5, 0.1, size=(40, 5))]).astype(np.float32)
    coords = project(x, "tsne", seed=0).coords
    a, b = coords[:40].mean(0), coords[40:].mean(0)
    spread = max(coords[:40].std(0).max(), coords[40:].std(0).max())
    assert np.linalg.norm(a - b) > 3 * spread
