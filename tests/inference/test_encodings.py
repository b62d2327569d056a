"""Encodings of large data sets (``vizvae.inference.encodings``): batch by batch into memory maps,
equal to the in-memory encoder, stored under the weights' and the data's SHA-256, reused, and never
stored half-done."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vizvae.checkpoint import SHIPPED_DIR, load_checkpoint
from vizvae.data.shapes_scale import large_shapes
from vizvae.inference.encodings import Cancelled, cached_encodings, data_sha256
from vizvae.inference.latent import encode_dataset
from vizvae.paths import DIGESTS

MODEL = SHIPPED_DIR / "shapes-vae-b1"


@pytest.fixture()
def setting(tmp_path, monkeypatch):
    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path / "cache"))
    images, _ = large_shapes(3000, seed=2, folder=tmp_path / "data")
    return load_checkpoint(MODEL, device="cpu").model, images, tmp_path


def test_the_encodings_are_the_encoder_s_and_come_back_from_the_cache(setting):
    model, images, tmp_path = setting
    calls = []
    mean, log_var, cached = cached_encodings(MODEL, model, images, batch_size=1000,
                                             progress=lambda done, n: calls.append(done))
    assert not cached and calls == [1000, 2000, 3000]
    reference = encode_dataset(model, np.array(images), batch_size=1000)
    assert np.array_equal(mean, reference.mean)
    assert np.allclose(np.exp(0.5 * log_var), reference.std, rtol=1e-6, atol=0)  # exp(log) round trip, float32
    assert isinstance(mean, np.memmap) and mean.dtype == np.float32 and not mean.flags.writeable
    again, _, cached = cached_encodings(MODEL, model, images, progress=lambda done, n: calls.append(-1))
    assert cached and -1 not in calls and np.array_equal(again, mean)


def test_other_data_has_another_key_and_a_broken_store_is_encoded_again(setting):
    model, images, tmp_path = setting
    other, _ = large_shapes(3000, seed=3, folder=tmp_path / "data")
    assert data_sha256(images) != data_sha256(other)
    assert data_sha256(images) == data_sha256(np.array(images))  # the bytes, however they are held
    mean, _, _ = cached_encodings(MODEL, model, images)
    folder = next((tmp_path / "cache").glob("*/encodings/*"))
    (folder / "meta.json").write_text(json.dumps({"weights_sha256": "0" * 64}))
    again, _, cached = cached_encodings(MODEL, model, images)
    assert not cached and np.array_equal(again, mean)


def test_a_cancelled_encoding_stores_nothing(setting):
    model, images, tmp_path = setting
    with pytest.raises(Cancelled):
        cached_encodings(MODEL, model, images, batch_size=1000, cancelled=lambda: True)
    stored = [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.parent.name != DIGESTS]
    assert stored == []  # the data's digest is remembered (paths.remembered_digest), no encoding is


def test_a_mapped_files_digest_is_remembered_across_processes_and_follows_its_bytes(setting, monkeypatch):
    model, images, tmp_path = setting
    first = data_sha256(images)
    reads = []
    monkeypatch.setattr("vizvae.inference.encodings._bytes_digest", lambda *args: reads.append(args) or "x" * 64)
    assert data_sha256(images) == first and reads == []  # read back from <cache>/digests, not hashed again
    path = images.filename
    changed = np.load(path)
    changed[0, 0] += 1.0
    np.save(path, changed)  # a new version of the file: hashed again
    assert data_sha256(np.load(path, mmap_mode="r")) == "x" * 64 and len(reads) == 1
