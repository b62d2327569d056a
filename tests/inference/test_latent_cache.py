"""The encoded test set in the checkpoint cache (vizvae/inference/latent.py ``cached_encoding``): what the
builder stores gives exactly ``encode_dataset``'s means, standard deviations and per-dimension KLs, and
new weights are encoded again."""

import numpy as np
import torch

from vizvae.checkpoint import save_checkpoint
from vizvae.inference import latent
from vizvae.inference.latent import cached_encoding, encode_dataset
from vizvae.models import VAE, VAEConfig


def save_tiny_vae(folder, seed):
    torch.manual_seed(seed)
    model = VAE(VAEConfig(input_shape=(1, 4, 4), latent_dim=3, hidden_dims=(8,)))
    save_checkpoint(model, folder, name="tiny", dataset={"name": "none"})
    return model


def test_stored_encoding_equals_encode_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path / "user"))
    model = save_tiny_vae(tmp_path / "model", seed=0)
    x = np.random.default_rng(0).uniform(size=(2500, 16)).astype(np.float32)  # three encoder batches
    _, hit = cached_encoding(tmp_path / "model", model, x, precomputed=True)
    assert not hit and len(list((tmp_path / "model" / "precomputed").glob("encoding-*.npz"))) == 1
    fresh = encode_dataset(model, x)
    monkeypatch.setattr(latent, "encode_dataset", lambda *args: (_ for _ in ()).throw(AssertionError("encoded")))
    stored, hit = cached_encoding(tmp_path / "model", model, x)
    assert hit
    for name in ("mean", "std", "kl_per_dimension"):
        np.testing.assert_array_equal(getattr(stored, name), getattr(fresh, name))
        assert getattr(stored, name).dtype == np.float32
    # KL(N(μ, σ²) ‖ N(0, 1)) per dimension, from the stored moments
    expected = 0.5 * (fresh.mean ** 2 + fresh.std ** 2 - 1 - np.log(fresh.std ** 2))
    np.testing.assert_allclose(stored.kl_per_dimension, expected, rtol=1e-5, atol=1e-6)


def test_new_weights_are_encoded_again(tmp_path, monkeypatch):
    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path / "user"))
    model = save_tiny_vae(tmp_path / "model", seed=0)
    x = np.random.default_rng(1).uniform(size=(50, 16)).astype(np.float32)
    cached_encoding(tmp_path / "model", model, x, precomputed=True)
    assert cached_encoding(tmp_path / "model", model, x)[1]
    retrained = save_tiny_vae(tmp_path / "model", seed=1)
    encoded, hit = cached_encoding(tmp_path / "model", retrained, x)
    assert not hit
    np.testing.assert_array_equal(encoded.mean, encode_dataset(retrained, x).mean)
    assert cached_encoding(tmp_path / "model", retrained, x)[1]  # now in the user cache
