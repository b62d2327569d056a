"""Hostile and damaged cache files (issue 14, point 10): a stored ``.npz`` whose ``.npy`` header
claims a huge shape is refused before anything is allocated, and a result full of NaN (or of the
wrong shape) is never drawn: both are recomputed."""

import io
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from vizvae.checkpoint import save_checkpoint
from vizvae.inference import cache, projection
from vizvae.models import VAE, VAEConfig

ROOT = Path(__file__).resolve().parent.parent.parent
N_POINTS = 5
PARAMS = projection.projection_params("umap", N_POINTS, 0, "test-encoder-means")


@pytest.fixture()
def checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path / "user"))
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 4, 4), latent_dim=2, hidden_dims=(4,)))
    return save_checkpoint(model, tmp_path / "model", name="tiny", dataset={"name": "none"})


def npy_claiming(shape, data: bytes, dtype="<f4") -> bytes:
    """An .npy member whose header claims ``shape`` but which holds only ``data``."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    return header.getvalue() + data


def write_projection_file(folder: Path, coords_member: bytes) -> Path:
    """A projection file where the cache looks for it, stamped with the checkpoint's SHA-256."""
    meta = json.dumps({cache.SHA_KEY: cache.checkpoint_sha256(folder), cache.PARAMS_KEY: PARAMS})
    meta_member = io.BytesIO()
    np.lib.format.write_array(meta_member, np.array(meta))
    file = cache.target_dir(folder) / f"{cache.result_stem('projection-umap', PARAMS)}.npz"
    file.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(file, "w") as archive:
        archive.writestr("coords.npy", coords_member)
        archive.writestr("__meta__.npy", meta_member.getvalue())
    return file


BOMB = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31))
    import numpy as np
    from vizvae.inference import cache

    def compute():
        print("recomputed")
        return {"coords": np.zeros((5, 2), np.float32)}

    arrays, from_cache = cache.cached_arrays(sys.argv[1], "projection-umap", PARAMS, compute,
                                             expect={"coords": (5, 2)})
    print(from_cache, arrays["coords"].shape)
""")


def test_a_header_claiming_2_to_the_40_rows_is_refused_before_allocating(checkpoint):
    """Before: `Unable to allocate 8.00 TiB` on every rerun until the file was deleted by hand. Run
    under a 2 GiB address-space cap, so a regression fails here instead of exhausting the machine."""
    file = write_projection_file(checkpoint, npy_claiming((1 << 40, 2), b"\0" * 40))
    with pytest.raises(ValueError, match=r"coords.npy' claims shape \(1099511627776, 2\) \(8,796,093,022,208 bytes\) "
                                         r"but holds 40 bytes"):
        cache.read_npz(file)
    result = subprocess.run([sys.executable, "-c", BOMB.replace("PARAMS", repr(PARAMS)), str(checkpoint)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-600:]
    assert result.stdout.split() == ["recomputed", "False", "(5,", "2)"]
    assert cache.read_npz(file)["coords"].shape == (5, 2)  # the hostile file was replaced


def test_a_result_over_the_size_cap_is_refused(checkpoint, monkeypatch):
    file = write_projection_file(checkpoint, npy_claiming((1024, 2), b"\0" * 8192))
    assert cache.read_npz(file)["coords"].shape == (1024, 2)
    with pytest.raises(ValueError, match=r"holds over 4,096 bytes; raise \$VIZVAE_MAX_CACHE_MB"):
        cache.read_npz(file, max_bytes=4096)


def test_an_object_array_is_refused_as_a_pickle(tmp_path):
    file = tmp_path / "objects.npz"
    with zipfile.ZipFile(file, "w") as archive:
        archive.writestr("x.npy", npy_claiming((1,), b"\x80\x04N.", dtype="|O"))
    with pytest.raises(ValueError, match="x.npy' holds Python objects"):
        cache.read_npz(file)


@pytest.mark.parametrize("stored", [
    np.full((N_POINTS, 2), np.nan, np.float32),  # before: drawn without a word
    np.full((N_POINTS, 2), np.inf, np.float32),
    np.zeros((N_POINTS, 3), np.float32),  # the wrong shape
])
def test_a_stored_projection_that_is_not_finite_or_not_its_shape_is_recomputed(checkpoint, monkeypatch, stored):
    calls = []

    def fake_umap(x, seed=0):
        calls.append(len(x))
        return projection.Projection(np.ones((len(x), 2), np.float32), "umap")

    monkeypatch.setitem(projection.METHODS, "umap", fake_umap)
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, stored)
    write_projection_file(checkpoint, buffer.getvalue())
    x = np.zeros((N_POINTS, 2), np.float32)
    result = projection.project(x, "umap", folder=checkpoint)
    assert not result.from_cache and calls == [N_POINTS]
    np.testing.assert_array_equal(result.coords, np.ones((N_POINTS, 2)))
    again = projection.project(x, "umap", folder=checkpoint)  # the recomputed result replaced the bad one
    assert again.from_cache and calls == [N_POINTS]


def test_a_stored_projection_of_other_weights_is_not_drawn(checkpoint, monkeypatch):
    monkeypatch.setitem(projection.METHODS, "umap",
                        lambda x, seed=0: projection.Projection(np.ones((len(x), 2), np.float32), "umap"))
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.zeros((N_POINTS, 2), np.float32))
    file = write_projection_file(checkpoint, buffer.getvalue())
    other = file.with_name("other.npz")
    with zipfile.ZipFile(file) as source, zipfile.ZipFile(other, "w") as target:
        target.writestr("coords.npy", source.read("coords.npy"))
        meta = io.BytesIO()
        np.lib.format.write_array(meta, np.array(json.dumps({cache.SHA_KEY: "0" * 64, cache.PARAMS_KEY: PARAMS})))
        target.writestr("__meta__.npy", meta.getvalue())
    other.replace(file)
    result = projection.project(np.zeros((N_POINTS, 2), np.float32), "umap", folder=checkpoint)
    assert not result.from_cache and float(result.coords[0, 0]) == 1.0
