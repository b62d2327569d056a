"""The model card's image grids: prior samples and test reconstructions.

The pages draw them with these functions, and training stores the seed-0 grids beside the
checkpoint (``preview-*.png``), so the Model page shows a shipped model's card without
importing torch or loading any weights: the app's first page renders fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PRIOR_PREVIEW = "preview-prior.png"
RECONSTRUCTION_PREVIEW = "preview-reconstructions.png"
SAMPLES = 64  # an 8×8 grid of prior samples
RECONSTRUCTIONS_PER_CLASS = 2


def prior_png(model: Any, image_shape: tuple[int, ...], seed: int = 0) -> bytes:
    from vizvae.viz.images import grid_png
    from vizvae.viz.latent import prior_samples

    return grid_png(prior_samples(model, SAMPLES, seed=seed), image_shape, columns=8)


def reconstruction_png(model: Any, dataset: Any, seed: int = 0) -> tuple[bytes, list[int]]:
    """Test images of every class above their reconstructions, and the rows shown."""
    from vizvae.viz.images import grid_png, paired_rows
    from vizvae.viz.latent import examples_per_class, reconstruct

    rows = examples_per_class(dataset.y_test, RECONSTRUCTIONS_PER_CLASS, seed=seed, n_rows=len(dataset.x_test))
    originals = dataset.x_test[rows]
    grid = paired_rows(originals, reconstruct(model, originals), columns=10)
    return grid_png(grid, dataset.image_shape), [int(r) for r in rows]


def write_previews(folder: str | Path) -> bool:
    """Store the seed-0 grids of an image model beside its checkpoint; False if it has none."""
    from vizvae.checkpoint import checkpoint_dataset, load_checkpoint, update_config

    folder = Path(folder)
    checkpoint = load_checkpoint(folder, device="cpu")
    if hasattr(checkpoint.model, "describe"):  # layers and parameter count, for the card without weights
        update_config(folder, architecture=checkpoint.model.describe())
    described = checkpoint.config.get("dataset") or {}
    if described.get("kind") != "image" or not described.get("image_shape") or not hasattr(checkpoint.model, "generate"):
        return False
    try:
        image_shape = tuple(described["image_shape"])
        (folder / PRIOR_PREVIEW).write_bytes(prior_png(checkpoint.model, image_shape, seed=0))
        png, rows = reconstruction_png(checkpoint.model, checkpoint_dataset(checkpoint.config), seed=0)
    except Exception:  # noqa: BLE001 - a model without these abilities simply has no preview
        for name in (PRIOR_PREVIEW, RECONSTRUCTION_PREVIEW):
            (folder / name).unlink(missing_ok=True)
        return False
    (folder / RECONSTRUCTION_PREVIEW).write_bytes(png)
    update_config(folder, previews={"seed": 0, "reconstruction_rows": rows})
    return True


def stored_previews(folder: str | Path, config: dict[str, Any]) -> tuple[bytes, bytes, list[int]] | None:
    """(prior grid, reconstruction grid, rows) stored for seed 0, if they match the weights."""
    folder = Path(folder)
    previews = config.get("previews") or {}
    files = [folder / PRIOR_PREVIEW, folder / RECONSTRUCTION_PREVIEW]
    if previews.get("seed") != 0 or not all(f.is_file() for f in files):
        return None
    weights = folder / "model.safetensors"
    if weights.is_file() and any(f.stat().st_mtime < weights.stat().st_mtime - 1 for f in files):
        return None  # older than the weights: stale
    return files[0].read_bytes(), files[1].read_bytes(), list(previews.get("reconstruction_rows", []))
