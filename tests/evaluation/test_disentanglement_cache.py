"""The Disentanglement page's information matrix in the checkpoint cache
(vizvae/evaluation/disentanglement.py ``cached_information``): what the builder stores for a shipped
shapes model equals ``measure_disentanglement`` (no DCI), and new weights are measured again."""

import shutil

import numpy as np
import pytest
import torch

from vizvae.checkpoint import SHIPPED_DIR, checkpoint_dataset, load_checkpoint, save_checkpoint
from vizvae.evaluation import disentanglement
from vizvae.evaluation.disentanglement import cached_information, measure_disentanglement
from vizvae.inference import cache
from vizvae.train.precompute import precompute


@pytest.fixture()
def shipped_copy(tmp_path, monkeypatch):
    source = SHIPPED_DIR / "shapes-vae-b1"
    if not (source / "model.safetensors").is_file():
        pytest.skip("shapes-vae-b1 is not built")
    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path / "user"))
    shutil.copytree(source, tmp_path / "shapes-vae-b1", ignore=shutil.ignore_patterns(cache.PRECOMPUTED))
    return load_checkpoint(tmp_path / "shapes-vae-b1", device="cpu")


def test_stored_information_equals_a_measurement(shipped_copy, monkeypatch):
    (file,) = precompute(shipped_copy.path, ["disentanglement"], log=lambda line: None)
    assert file.parent == shipped_copy.path / "precomputed"
    dataset = checkpoint_dataset(shipped_copy.config)
    fresh = measure_disentanglement(shipped_copy.model, dataset, with_dci=False)
    monkeypatch.setattr(disentanglement, "measure_disentanglement", lambda *a, **k: pytest.fail("measured"))
    stored, hit = cached_information(shipped_copy.path, shipped_copy.model, dataset)
    assert hit and stored.dci is None
    assert stored.factor_names == fresh.factor_names == ("shape", "scale", "rotation", "x", "y")
    assert stored.mig.score == fresh.mig.score and stored.active_units == fresh.active_units
    np.testing.assert_array_equal(stored.mig.normalized_mi, fresh.mig.normalized_mi)
    np.testing.assert_array_equal(stored.mig.per_factor, fresh.mig.per_factor)
    np.testing.assert_array_equal(stored.average_kl, fresh.average_kl)
    assert stored.summary() == fresh.summary()


def test_new_weights_are_measured_again(shipped_copy):
    dataset = checkpoint_dataset(shipped_copy.config)
    cached_information(shipped_copy.path, shipped_copy.model, dataset, precomputed=True)
    model = shipped_copy.model
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(0.5)
    save_checkpoint(model, shipped_copy.path, name=shipped_copy.name, dataset=shipped_copy.config["dataset"])
    again, hit = cached_information(shipped_copy.path, model, dataset)
    assert not hit
    np.testing.assert_array_equal(again.average_kl, measure_disentanglement(model, dataset, with_dci=False).average_kl)
