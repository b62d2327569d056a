"""The inpainting task (vizvae/evaluation/inpainting.py): fixed square holes, one score per method the
model supports, through ``python -m vizvae evaluate MODEL --task inpainting --json``."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from vizvae.__main__ import main
from vizvae.checkpoint import SHIPPED_DIR, checkpoint_dataset, load_checkpoint
from vizvae.evaluation import get_task
from vizvae.evaluation.inpainting import InpaintingSettings, evaluate_inpainting, inpainting_masks
from vizvae.inference.imputers import METHODS

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py
SMALL = InpaintingSettings(rows=16, n_samples=8, n_proposals=64, n_iterations=5)



@pytest.fixture(scope="module")
def pvae():
    checkpoint = load_checkpoint(SHIPPED_DIR / "mnist-pvae", device="cpu")
    return checkpoint.model, checkpoint_dataset(checkpoint.config)


def test_masks_hide_one_seeded_square_each():
    masks = inpainting_masks(50, (28, 28), hole=14, seed=0)
    assert masks.shape == (50, 784) and masks.dtype == torch.bool
    assert ((~masks).sum(-1) == 196).all()
    for mask in masks[:5]:
        rows, cols = torch.nonzero(~mask.reshape(28, 28), as_tuple=True)
        assert rows.max() - rows.min() == 13 and cols.max() - cols.min() == 13  # one 14 × 14 square
    assert torch.equal(masks, inpainting_masks(50, (28, 28), hole=14, seed=0))  # fixed
    assert not torch.equal(masks, inpainting_masks(50, (28, 28), hole=14, seed=1))


def test_every_method_is_scored_and_the_model_beats_the_fills(pvae):
    model, dataset = pvae
    result = evaluate_inpainting(model, dataset, SMALL)
    methods = result["methods"]
    assert list(methods) == list(METHODS)
    assert result["rows"] == 16 and result["hole"] == 14
    assert methods["zero"]["missing_nll"] is None  # a point fill has no likelihood
    for name, scores in methods.items():
        assert 0.0 < scores["mse"] < 1.0, name
        if name != "zero":
            assert math.isfinite(scores["missing_nll"]) and scores["missing_nll"] > 0, name
    # the model's posterior samplers know more about a digit than per-pixel marginals do
    for name in ("hmc", "sir"):
        assert methods[name]["missing_nll"] < methods["mean"]["missing_nll"], name
        assert methods[name]["mse"] < methods["zero"]["mse"], name
    # the same seed gives the same numbers
    again = evaluate_inpainting(model, dataset, dataclasses.replace(SMALL, methods=("encoder",)))
    assert again["methods"]["encoder"] == {**methods["encoder"], "seconds": again["methods"]["encoder"]["seconds"]}


def test_the_cli_prints_the_methods_object(capsys):
    code = main(["evaluate", "mnist-pvae", "--task", "inpainting", "--json", "--device", "cpu", "-o", "rows=4",
                 "-o", "samples=4", "-o", "proposals=16", "-o", "methods=encoder,sir"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model"] == "mnist-pvae" and printed["dataset"] == "mnist"
    assert set(printed["methods"]) == {"encoder", "sir"}
    assert set(printed["methods"]["sir"]) == {"missing_nll", "mse", "seconds"}


def test_bad_requests_get_one_line_errors(capsys):
    assert main(["evaluate", "mnist-pvae", "--task", "inpainting", "--device", "cpu", "-o", "methods=magic"]) == 1
    assert "unknown inpainting method" in capsys.readouterr().err
    task = get_task("inpainting")
    assert task.__name__ == "inpainting_task"
    assert main(["evaluate", "mnist-ugvae", "--task", "inpainting", "--device", "cpu", "-o", "rows=2"]) == 1
    assert "inpainting needs a model" in capsys.readouterr().err
