import json
import subprocess
import sys
from pathlib import Path

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
