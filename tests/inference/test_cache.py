"""The checkpoint cache (vizvae/inference/cache.py): keyed by the weights' SHA-256, stale files
ignored, atomic writes, no pickle."""

import hashlib
import json
import os

import numpy as np
import pytest
import torch

from vizvae.checkpoint import save_checkpoint
from vizvae.inference import cache
from vizvae.models import VAE, VAEConfig


def save_tiny_vae(folder, seed=0):
    torch.manual_seed(seed)
    model = VAE(VAEConfig(input_shape=(1, 4, 4), latent_dim=2, hidden_dims=(4,)))
    return save_checkpoint(model, folder, name="tiny", dataset={"name": "none"})


@pytest.fixture()
def checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path / "user"))
    return save_tiny_vae(tmp_path / "model")


def test_the_key_is_the_sha256_of_the_weights_file_and_follows_it(checkpoint):
    expected = hashlib.sha256((checkpoint / "model.safetensors").read_bytes()).hexdigest()
    assert cache.checkpoint_sha256(checkpoint) == expected
    save_tiny_vae(checkpoint, seed=1)
    assert cache.checkpoint_sha256(checkpoint) == hashlib.sha256(
        (checkpoint / "model.safetensors").read_bytes()).hexdigest() != expected


def test_arrays_round_trip_in_the_user_cache_of_the_weights(checkpoint, tmp_path):
    coords = np.arange(6, dtype=np.float32).reshape(3, 2)
    file = cache.store_arrays(checkpoint, "projection-umap", {"seed": 0, "n": 3}, {"coords": coords})
    assert file.parent == tmp_path / "user" / cache.checkpoint_sha256(checkpoint)
    assert oct(file.stat().st_mode & 0o777) == "0o644"
    read = cache.load_arrays(checkpoint, "projection-umap", {"n": 3, "seed": 0})  # key order does not matter
    np.testing.assert_array_equal(read["coords"], coords)
    assert read["coords"].dtype == np.float32
    assert cache.load_arrays(checkpoint, "projection-umap", {"n": 3, "seed": 1}) is None
    assert cache.stored_result(checkpoint, "projection-umap", {"n": 3, "seed": 0}) == file


def test_json_round_trip(checkpoint):
    cache.store_json(checkpoint, "fd-table", {"n": 1000}, {"values": [1.5, 2.0]})
    assert cache.load_json(checkpoint, "fd-table", {"n": 1000}) == {"values": [1.5, 2.0]}
    assert cache.load_json(checkpoint, "fd-table", {"n": 999}) is None


def test_a_stale_file_is_recomputed(checkpoint, tmp_path):
    """A file stamped with other weights is never returned, even when copied where it is looked for."""
    calls = []

    def compute():
        calls.append(1)
        return {"value": np.array([len(calls)])}

    first, hit = cache.cached_arrays(checkpoint, "thing", {}, compute)
    assert (first["value"][0], hit) == (1, False)
    old_file = cache.stored_result(checkpoint, "thing", {})
    save_tiny_vae(checkpoint, seed=1)
    new_dir = cache.user_dir(cache.checkpoint_sha256(checkpoint))
    new_dir.mkdir(parents=True)
    (new_dir / old_file.name).write_bytes(old_file.read_bytes())  # the old result, under the new key
    again, hit = cache.cached_arrays(checkpoint, "thing", {}, compute)
    assert (again["value"][0], hit) == (2, False)
    assert cache.cached_arrays(checkpoint, "thing", {}, compute)[0]["value"][0] == 2


def test_settings_are_checked_inside_the_file(checkpoint):
    file = cache.store_json(checkpoint, "thing", {"a": 1}, 1)
    document = json.loads(file.read_text())
    document["params"] = {"a": 2}  # as if two settings shared a file name
    file.write_text(json.dumps(document))
    assert cache.load_json(checkpoint, "thing", {"a": 1}) is None


def test_shipped_results_are_read_first_and_pruned_when_stale(checkpoint, monkeypatch):
    cache.store_json(checkpoint, "thing", {}, "user", precomputed=False)
    shipped = cache.store_json(checkpoint, "thing", {}, "shipped", precomputed=True)
    assert shipped.parent == checkpoint / "precomputed"
    assert cache.load_json(checkpoint, "thing", {}) == "shipped"
    save_tiny_vae(checkpoint, seed=1)
    assert cache.load_json(checkpoint, "thing", {}) is None
    assert cache.prune_stale(checkpoint) == [shipped] and not shipped.exists()


def test_a_write_is_atomic(checkpoint, monkeypatch):
    """A write that fails half-way leaves the previous whole file and no temporary file behind."""
    file = cache.store_json(checkpoint, "thing", {}, {"old": True})

    def fail_midway(handle):
        handle.write(b'{"weights_sha256": "trunc')
        raise OSError("disk full")

    assert cache.write_atomically(file, fail_midway) is None
    assert cache.load_json(checkpoint, "thing", {}) == {"old": True}
    assert os.listdir(file.parent) == [file.name]


def test_a_temporary_file_is_renamed_into_place(checkpoint, monkeypatch):
    renamed = []
    real_replace = os.replace

    def spy(source, target):
        assert not os.path.exists(target) or os.path.basename(source).startswith(".tmp-")
        renamed.append((os.path.basename(source), os.path.basename(target)))
        real_replace(source, target)

    monkeypatch.setattr(cache.os, "replace", spy)
    file = cache.store_arrays(checkpoint, "thing", {}, {"a": np.zeros(3)})
    ((source, target),) = renamed
    assert source.startswith(".tmp-") and target == file.name


def test_damaged_files_and_hostile_names_are_refused(checkpoint):
    file = cache.store_arrays(checkpoint, "thing", {}, {"a": np.zeros(3)})
    file.write_bytes(b"PK\x03\x04 not a zip")
    assert cache.load_arrays(checkpoint, "thing", {}) is None
    for name in ("../escape", "a/b", "", "UPPER"):
        with pytest.raises(ValueError):
            cache.store_json(checkpoint, name, {}, 1)
    with pytest.raises(ValueError, match="pickle"):
        cache.store_arrays(checkpoint, "thing", {}, {"a": np.array([{"x": 1}], dtype=object)})
    with pytest.raises(ValueError):
        cache.user_dir("../../etc")
