"""The staged training CLI (Algorithm 1) and the imputation task, end to end on tiny settings."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--dataset", "mnist", "--hidden", "16", "--batch-size", "16", "--threads", "1", "--imputation-rows", "6",
        "--imputation-samples", "3", "--imputation-seeds", "0", "--quiet"]


def vizvae(*args):
    result = subprocess.run([sys.executable, "-m", "vizvae", *args], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result


def test_pvae_then_hmcvae_from_it_then_imputation_task(tmp_path):
    vizvae("train", "--model", "pvae", "--latent-dims", "3", "--steps", "3", "--out", str(tmp_path / "pvae"), *TINY)
    vizvae("train", "--model", "hmcvae", "--init-from", str(tmp_path / "pvae"), "--hmc-steps", "1",
           "--hmc-batch-size", "2", "--sksd-chains", "4", "--out", str(tmp_path / "hmcvae"), *TINY)
    config = json.loads((tmp_path / "hmcvae" / "config.json").read_text())
    stages = config["training"]["stages"]
    assert [s["name"] for s in stages] == ["stage 2: VI", "stage 3: HMC"] and stages[0]["source"] == "pvae"
    assert config["model"] == "hmcvae" and config["latent_dims"] == [3] and config["training"]["init_from"] == "pvae"
    assert {"missing_nll", "target_nll", "target_accuracy"} <= set(config["evaluation"])
    assert "stage 3: HMC: 1 steps" in (tmp_path / "hmcvae" / "card.md").read_text()
    out = vizvae("evaluate", str(tmp_path / "hmcvae"), "--task", "imputation", "--json", "-o", "rows=4",
                 "-o", "samples=3", "-o", "seeds=0,1", "--device", "cpu")
    result = json.loads(out.stdout)
    assert result["imputation_rows"] == 4 and result["imputation_seeds"] == [0, 1]
    assert 0 < result["missing_nll"] < 1 and 0 <= result["target_accuracy"] <= 1
    assert result["imputation_sampler"].startswith("HMC")
    # an HH-VAE cannot start from a one-layer model: one clear error, nothing written
    refused = subprocess.run([sys.executable, "-m", "vizvae", "train", "--model", "hhvae", "--init-from",
                              str(tmp_path / "pvae"), "--hmc-steps", "1", "--out", str(tmp_path / "bad"), *TINY],
                             capture_output=True, text=True, cwd=ROOT)
    assert refused.returncode != 0 and "start hmcvae from a pvae" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()
