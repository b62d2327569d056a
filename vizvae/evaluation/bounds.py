"""Test-set ELBO and IWAE(K) bounds of a checkpoint, and its active latent units per layer."""

from __future__ import annotations

from typing import Any

import torch

from vizvae.checkpoint import Checkpoint
from vizvae.data import load_dataset
from vizvae.inference.importance import evaluate_bounds
from vizvae.models.capabilities import GroupModel


def dataset_for(checkpoint: Checkpoint):
    """The checkpoint's own dataset with its own preprocessing."""
    described = checkpoint.config.get("dataset", {})
    options = {}
    preprocessing = described.get("preprocessing", {})
    if described.get("kind") == "image" and "binarize" in preprocessing:
        options["binarize"] = preprocessing["binarize"]
    if "image_size" in preprocessing:
        options["image_size"] = preprocessing["image_size"]
    return load_dataset(described.get("name") if "source" not in preprocessing else preprocessing["source"], **options)


ACTIVE_KL = 0.1  # nats: a latent dimension whose mean KL(q || p) over the test set exceeds this is active


@torch.no_grad()
def active_units(model: Any, x: torch.Tensor) -> dict[str, Any]:
    """Per latent layer, how many dimensions carry information about x: mean over the rows of
    KL(q(z_d | x) || N(0, 1)) above ``ACTIVE_KL`` (a collapsed dimension has q = prior, KL ≈ 0)."""
    kl = model.encode(x, None).kl_per_dimension().mean(0)  # (latent,)
    sizes = list(model.latent_dims)  # LatentModel: one entry per layer
    layers = kl.split(sizes)
    return {"active_units": [int((layer > ACTIVE_KL).sum()) for layer in layers], "latent_dims": sizes,
            "kl_per_layer": [round(float(layer.sum()), 3) for layer in layers]}


def evaluate_bounds_task(checkpoint: Checkpoint, options: dict[str, Any]) -> dict[str, Any]:
    dataset = dataset_for(checkpoint)
    n = int(options.get("rows") or len(dataset.x_test))
    x = torch.as_tensor(dataset.x_test[:n], device=checkpoint.model.device)
    ks = tuple(int(k) for k in str(options.get("ks") or "1,5,50").split(","))
    if isinstance(checkpoint.model, GroupModel):  # UG-VAE and kin: bounds on log p(X) per group
        bounds = checkpoint.model.evaluate_group_bounds(x, ks=ks, seed=int(options.get("seed") or 0))
        return {"model": checkpoint.name, "dataset": dataset.name, **bounds}
    bounds = evaluate_bounds(checkpoint.model, x, None, ks=ks, seed=int(options.get("seed") or 0))
    return {"model": checkpoint.name, "dataset": dataset.name, "n_test": n, **{k: round(v, 3) for k, v in bounds.items()},
            **active_units(checkpoint.model, x)}
