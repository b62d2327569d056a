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


# -- issue 14, point 11 (arguments) and point 9 (--out): refused before any work, in one line -----------------
@pytest.fixture()
def no_work(monkeypatch):
    """Loading a dataset is the first piece of work a train command does: here it fails the test."""
    import vizvae.train.options as options

    def refuse(*args, **kwargs):
        raise AssertionError("training started before its arguments were checked")

    monkeypatch.setattr(options, "load_dataset", refuse)


@pytest.mark.parametrize("arguments, message", [
    (["--steps", "0"], "--steps must be at least 1, got 0"),  # before: trained the 50-epoch default
    (["--steps", "-1"], "--steps must be at least 1, got -1"),  # before: saved an untrained model, rc 0
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--latent-dim", "0"], "--latent-dim must be at least 1, got 0"),  # before: a traceback
    (["--latent-dim", "-3"], "--latent-dim must be at least 1, got -3"),
    (["--latent-dims", "20,a"], "--latent-dims must be whole numbers of at least 1 separated by commas, got '20,a'"),
    (["--lr", "nan"], "--lr must be a finite number, got nan"),
    (["--sigma", "0"], "--sigma must be positive, got 0.0"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
])
def test_train_arguments_no_training_could_use_are_refused_first(tmp_path, capsys, no_work, arguments, message):
    from vizvae.__main__ import main

    rc = main(["train", "--model", "vae", "--dataset", "diabetes", *arguments, "--out", str(tmp_path / "x")])
    stderr = capsys.readouterr().err
    assert rc == 2 and stderr == f"error: {message}\n"
    assert not (tmp_path / "x").exists()


def test_an_out_that_is_a_file_or_a_checkpoint_is_refused_before_training(tmp_path, capsys, no_work):
    """Before: an --out that is a file failed with a traceback after the whole training; an existing
    checkpoint or a non-empty folder was overwritten with rc 0."""
    from vizvae.__main__ import main

    (tmp_path / "file").write_text("mine")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("mine")
    for out, message in [("file", "a file, not a folder; a checkpoint is a folder: choose another --out"),
                         ("folder", "is not empty; pass --overwrite to replace it, or choose another --out")]:
        rc = main(["train", "--model", "vae", "--dataset", "diabetes", "--steps", "3", "--out", str(tmp_path / out)])
        assert rc == 2 and capsys.readouterr().err == f"error: {tmp_path / out}: {message}\n"
    assert (tmp_path / "file").read_text() == "mine" and (tmp_path / "folder" / "notes.txt").read_text() == "mine"


def test_overwrite_replaces_an_existing_checkpoint_and_its_card(tmp_path, capsys):
    from vizvae.__main__ import main
    from vizvae.checkpoint import load_checkpoint

    out = str(tmp_path / "ckpt")
    common = ["train", "--model", "vae", "--dataset", "diabetes", "--hidden", "8", "--steps", "3", "--quiet",
              "--out", out]
    assert main([*common, "--latent-dim", "2"]) == 0
    assert main([*common, "--latent-dim", "3"]) == 2
    assert "already holds a checkpoint; pass --overwrite" in capsys.readouterr().err
    assert load_checkpoint(out).model.latent_dims == [2]
    assert main([*common, "--latent-dim", "3", "--overwrite"]) == 0
    assert load_checkpoint(out).model.latent_dims == [3]
    assert "latent dims [3]" in (tmp_path / "ckpt" / "card.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no staging folder left behind
