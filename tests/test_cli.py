import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_train_then_check(tmp_path):
    out = tmp_path / "vae2d"
    result = subprocess.run(
        [sys.executable, "-m", "vizvae", "train", "--model", "vae", "--dataset", "mnist", "--latent-dim", "2",
         "--steps", "200", "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "step 200/200" in result.stderr and "ETA" in result.stderr and "ELBO" in result.stderr
    config = json.loads((out / "config.json").read_text())
    history = config["training"]["history"]
    assert history["step"][-1] == 200 and len(history["loss"]) == len(history["step"])
    assert history["test_elbo"][-1] > history["test_elbo"][0]  # it learned something
    assert config["evaluation"]["test_elbo"] <= config["evaluation"]["test_iwae_50"]
    assert (out / "card.md").read_text().count("test_elbo") == 1
    check = subprocess.run([sys.executable, "-m", "vizvae", "check", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 0 and check.stdout.startswith("ok:")


def test_unknown_model_key(tmp_path):
    result = subprocess.run([sys.executable, "-m", "vizvae", "train", "--model", "gan", "--dataset", "mnist",
                             "--out", str(tmp_path / "x")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0 and "unknown --model 'gan'" in result.stderr


def test_unknown_dataset(tmp_path):
    result = subprocess.run([sys.executable, "-m", "vizvae", "train", "--model", "vae", "--dataset", "cifar",
                             "--steps", "1", "--out", str(tmp_path / "x")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and "unknown dataset 'cifar'" in result.stderr


def test_precompute_stores_results_beside_a_model_atomically(tmp_path, monkeypatch):
    """``precompute`` writes whole files into <model>/precomputed/, stamped with the weights' SHA-256,
    leaves no temporary file, and removes a stale one."""
    import shutil

    import numpy as np

    from vizvae.checkpoint import SHIPPED_DIR
    from vizvae.inference import cache, projection
    from vizvae.train.precompute import precompute

    source = SHIPPED_DIR / "mnist-vae-2d"
    if not (source / "model.safetensors").is_file():
        pytest.skip("mnist-vae-2d is not built")
    folder = tmp_path / "mnist-vae-2d"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns(cache.PRECOMPUTED))
    fake = lambda x, seed=0: projection.Projection(np.full((len(x), 2), seed, np.float32), "fake")  # noqa: E731
    monkeypatch.setitem(projection.METHODS, "umap", fake)
    monkeypatch.setitem(projection.METHODS, "tsne", fake)
    (folder / "precomputed").mkdir()
    stale = folder / "precomputed" / "projection-umap-000000000000.npz"
    np.savez(stale, __meta__=np.array('{"weights_sha256": "0", "params": {}}'))
    files = precompute(folder, ["projections"], log=lambda line: None)
    assert sorted(f.name.split("-")[1] for f in files) == ["tsne", "umap"]
    assert sorted(p.name for p in (folder / "precomputed").iterdir()) == sorted(f.name for f in files)
    assert not stale.exists()
    with np.load(files[0], allow_pickle=False) as stored:
        assert cache.checkpoint_sha256(folder) in str(stored["__meta__"])
