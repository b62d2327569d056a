"""The mixed-type models through the CLI: three-stage training on a table, the saia and imputation tasks,
and the shipped boston models' results (Table 5.2 ordering, Fig. 5.5's mi ≤ random)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vizvae.checkpoint import SHIPPED_DIR

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--dataset", "boston", "--hidden", "16", "--marginal-hidden", "8", "--batch-size", "32", "--threads", "1",
        "--imputation-rows", "8", "--imputation-samples", "5", "--imputation-seeds", "0", "--saia-rows", "3"]


def vizvae(*args):
    result = subprocess.run([sys.executable, "-m", "vizvae", *args], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result


def test_hhvaem_trains_in_three_stages_and_caches_its_saia_curves(tmp_path):
    out = tmp_path / "hhvaem"
    run = vizvae("train", "--model", "hhvaem", "--marginal-steps", "4", "--steps", "4",
                 "--hmc-steps", "1", "--hmc-batch-size", "2", "--sksd-chains", "4", "--n-transitions", "2",
                 "--out", str(out), *TINY)
    printed = run.stdout + run.stderr
    for stage in ("stage 1: marginal VAEs", "stage 2: VI", "stage 3: HMC"):
        assert f"hhvaem {stage}" in printed
    config = json.loads((out / "config.json").read_text())
    assert [s["name"] for s in config["training"]["stages"]] == ["stage 1: marginal VAEs", "stage 2: VI", "stage 3: HMC"]
    assert {"missing_nll", "target_nll"} <= set(config["evaluation"])
    assert config["latent_dims"] == [10, 5]  # the thesis' size for boston when none is given
    card = (out / "card.md").read_text()
    assert "marginal VAEs: one per column" in card and "Sequential feature acquisition" in card
    cached = json.loads(vizvae("evaluate", str(out), "--task", "saia", "--json", "-o", "rows=3").stdout)
    assert cached["cached"] is True and set(cached["areas"]) == {"mi", "kl", "random"}
    assert all(len(curve) == 14 for curve in cached["curves"].values())  # 13 features: steps 0..13
    fresh = json.loads(vizvae("evaluate", str(out), "--task", "saia", "--json", "-o", "rows=3", "-o", "fresh=1").stdout)
    assert fresh["cached"] is False and fresh["curves"] == cached["curves"]  # the cache is what a run gives
    imputation = json.loads(vizvae("evaluate", str(out), "--task", "imputation", "--json", "-o", "samples=5",
                                   "-o", "seeds=0,1,2,3,4").stdout)
    assert imputation["imputation_seeds"] == [0, 1, 2, 3, 4] and imputation["imputation_rows"] == 101
    assert imputation["missing_nll"] > 0 and imputation["missing_nll_std"] > 0 and "target_nll_std" in imputation


def test_table_defaults_follow_the_thesis():
    from vizvae.train.staged_commands import table_latent_dims

    assert table_latent_dims(13, n_layers=2) == "10,5" and table_latent_dims(13, n_layers=1) == "10"
    assert table_latent_dims(10, n_layers=2) == "4,2"  # diabetes


def test_the_saia_task_refuses_image_models_with_one_line():
    result = subprocess.run([sys.executable, "-m", "vizvae", "evaluate", "mnist-vae-2d", "--task", "saia", "--json"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0 and "mixed-type model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def shipped_evaluation(name: str) -> dict:
    return json.loads((SHIPPED_DIR / name / "config.json").read_text())["evaluation"]


@pytest.mark.parametrize("table, models", [("boston", ["vaem", "miwaem", "hvaem", "hmcvaem", "hhvaem"]),
                                           ("diabetes", ["vaem", "hhvaem"]), ("wine", ["vaem", "hhvaem"])])
def test_shipped_mixed_models_carry_their_imputation_results_and_curves(table, models):
    for model in models:
        evaluation = shipped_evaluation(f"{table}-{model}")
        assert evaluation["imputation_seeds"] == [0, 1, 2, 3, 4]
        assert {"missing_nll", "missing_nll_std", "target_nll", "target_nll_std"} <= set(evaluation)
        assert (SHIPPED_DIR / f"{table}-{model}" / "saia.json").is_file()


def test_on_boston_hhvaem_predicts_the_target_better_than_vaem():
    """Table 5.2's ordering on boston: HH-VAEM's test NLL of the target is below VAEM's."""
    assert shipped_evaluation("boston-hhvaem")["target_nll"] < shipped_evaluation("boston-vaem")["target_nll"]


def test_boston_hhvaem_stored_target_nll_is_what_the_task_computes():
    result = json.loads(vizvae("evaluate", "boston-hhvaem", "--task", "imputation", "--json", "--device", "cpu").stdout)
    stored = shipped_evaluation("boston-hhvaem")
    assert result["target_nll"] == pytest.approx(stored["target_nll"], abs=0.02)
    assert result["missing_nll"] == pytest.approx(stored["missing_nll"], abs=0.02)


def fresh_saia(name: str, rows: int | None) -> tuple[dict, dict]:
    """SAIA recomputed in-process on the first ``rows`` test rows with the options of the shipped
    cache, and that cache."""
    from vizvae.checkpoint import checkpoint_dataset, load_checkpoint
    from vizvae.evaluation.saia import evaluate_saia, read_saia_cache

    checkpoint = load_checkpoint(SHIPPED_DIR / name, device="cpu")
    cached = read_saia_cache(checkpoint.path)
    assert cached is not None, f"{name}/saia.json is missing or belongs to other weights"
    dataset = checkpoint_dataset(checkpoint.config)
    return evaluate_saia(checkpoint.model, dataset, rows=rows, **cached["options"]), cached


def test_the_shipped_saia_cache_is_what_the_saia_code_computes():
    """boston-vaem's saia.json recomputed from scratch on all its rows (a seeded run: same numbers)."""
    fresh, cached = fresh_saia("boston-vaem", rows=None)
    assert fresh["rows"] == cached["rows"] == 101
    for strategy in ("mi", "kl", "random"):
        assert fresh["curves"][strategy] == pytest.approx(cached["curves"][strategy], abs=1e-5)
        assert fresh["curves_se"][strategy] == pytest.approx(cached["curves_se"][strategy], abs=1e-5)
        assert fresh["areas"][strategy] == pytest.approx(cached["areas"][strategy], abs=1e-4)
        assert fresh["first_acquired"][strategy] == cached["first_acquired"][strategy]


@pytest.mark.parametrize("name", ["boston-vaem", "boston-hhvaem"])
def test_on_boston_the_mi_reward_finds_information_no_later_than_random(name):
    """On the shipped cache, and again on a few rows recomputed with the SAIA code: the MI reward
    acquires the cache's favourite first feature and its error curve lies below random's."""
    result = json.loads(vizvae("evaluate", name, "--task", "saia", "--json").stdout)
    assert result["cached"] is True  # the cache matches the shipped weights
    assert result["areas"]["mi"] <= result["areas"]["random"]
    fresh, cached = fresh_saia(name, rows=6)
    favourite = int(np.argmax(cached["first_acquired"]["mi"]))
    assert cached["first_acquired"]["mi"][favourite] > 0.9 * cached["rows"]
    assert int(np.argmax(fresh["first_acquired"]["mi"])) == favourite
    assert fresh["first_acquired"]["mi"][favourite] > fresh["rows"] / 2
    assert fresh["curves"]["mi"][0] == fresh["curves"]["random"][0]  # nothing acquired yet: same seed, same start
    assert fresh["areas"]["mi"] < fresh["areas"]["random"]
