"""``python -m vizvae precompute [NAMES]``: store with each shipped model what a first visit to
the app would otherwise wait for, in ``assets/models/<name>/precomputed/`` (see
``vizvae.inference.cache``; every file carries the SHA-256 of the weights it was computed from,
so a retrained model's old files are ignored, and removed here).

What is stored (each only for the models the view exists for):

* ``projections`` — UMAP and t-SNE of the encoder means of the test set (Latent space page);
* ``fd`` — the Fréchet distances behind the Global & local page's Table 4.1 (UG-VAE, ML-VAE and
  β-VAE models of 28×28 digits), nine repetitions: any fewer are their first ones;
* ``posterior`` — the Posterior page's default view (test image 0, no mask, seed 0, 50 chains,
  step sizes ×1): the HMC chains, their diagnostics and, for a 2-D latent, the exact posterior grid;
* ``encodings`` — the encoder means and standard deviations of the test set (Latent space page);
* ``global_local`` — the Global & local page's first view of a UG-VAE (and of the ML-VAE drawn beside it):
  the Fig. 4.4 grid of every cluster, the structured-batch study of the default kinds, the batch centre;
* ``disentanglement`` — the Disentanglement page's MIG and information matrix of a ``shapes`` model;
* ``inpainting`` — the Inpainting page's first Run (test image 0, a centred 14 × 14 hole, the default
  methods the model supports, 32 draws, seed 0);
* ``acquisition`` — the Acquisition page's default view of a mixed-type model (test row 0, 200 draws,
  seed 0, every strategy).

* ``hmc_lab`` — (no model) the HMC lab's first training of each toy target, in ``assets/hmc_lab/``.

``rebuild`` runs this after training. A task is a function ``(checkpoint) -> list of files``;
``TASKS`` names them so that ``--tasks`` can pick some.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

from vizvae.checkpoint import Checkpoint, checkpoint_dataset, load_checkpoint, resolve_checkpoint, shipped_checkpoints

# one Gaussian latent space under a N(0, I) prior: the models the Latent space and Posterior pages draw
LATENT_MODELS = ("vae", "miwae", "pvae", "hmcvae", "hvae", "hhvae")
FD_MODELS = ("ugvae", "mlvae")  # the Global & local page's models ...
FD_COUNTERPARTS = ("mnist-betavae-b10",)  # ... and the β-VAE it compares them with
POSTERIOR_MODELS = ("mnist-vae-2d", "mnist-hmcvae-2d", "mnist-hmcvae", "mnist-hhvae")


def _image_kind(checkpoint: Checkpoint) -> tuple[int, ...] | None:
    dataset = checkpoint.config.get("dataset") or {}
    shape = dataset.get("image_shape")
    return tuple(int(s) for s in shape) if dataset.get("kind") == "image" and shape else None


def precompute_projections(checkpoint: Checkpoint) -> list[Path]:
    from vizvae.inference import cache
    from vizvae.inference.latent import encode_dataset
    from vizvae.inference.projection import SLOW_METHODS, project, projection_params

    if checkpoint.config.get("model") not in LATENT_MODELS or _image_kind(checkpoint) is None:
        return []
    means = encode_dataset(checkpoint.model, checkpoint_dataset(checkpoint.config).x_test).mean
    files = []
    for method in sorted(SLOW_METHODS):
        project(means, method, folder=checkpoint.path, precomputed=True)
        files.append(cache.stored_result(checkpoint.path, f"projection-{method}",
                                         projection_params(method, len(means), 0, "test-encoder-means")))
    return files


def precompute_fd(checkpoint: Checkpoint) -> list[Path]:
    from vizvae.evaluation.classifier import default_classifier_folder
    from vizvae.evaluation.fd import MAX_REPETITIONS, cached_fd, fd_params

    wanted = checkpoint.config.get("model") in FD_MODELS or checkpoint.name in FD_COUNTERPARTS
    classifier = default_classifier_folder()
    if not wanted or _image_kind(checkpoint) != (1, 28, 28) or not (classifier / "model.safetensors").is_file():
        return []
    from vizvae.inference import cache

    real = checkpoint_dataset(checkpoint.config).x_test
    n = min(1000, len(real))
    cached_fd(checkpoint.path, checkpoint.model, classifier, real, n=n, repetitions=MAX_REPETITIONS, seed=0,
              precomputed=True)
    return [cache.stored_result(checkpoint.path, "fd", fd_params(classifier, n, MAX_REPETITIONS, 0), kind="json")]


def precompute_posterior(checkpoint: Checkpoint) -> list[Path]:
    from vizvae.inference.posterior_store import DEFAULT_VIEW, store_default_posterior

    if checkpoint.name not in POSTERIOR_MODELS:
        return []
    return store_default_posterior(checkpoint, **DEFAULT_VIEW)


def precompute_acquisition(checkpoint: Checkpoint) -> list[Path]:
    """The Acquisition page's default view of a mixed-type model with a predictor: its default test row under
    every strategy."""
    from vizvae.evaluation.acquisition_view import store_default_runs
    from vizvae.models.capabilities import PredictorModel, TableModel

    model = checkpoint.model
    if not (isinstance(model, TableModel) and isinstance(model, PredictorModel) and model.has_predictor):
        return []
    return store_default_runs(checkpoint, checkpoint_dataset(checkpoint.config))


def precompute_encodings(checkpoint: Checkpoint) -> list[Path]:
    """The encoder posteriors of the test set (means and standard deviations): the Latent space page's points."""
    from vizvae.inference import cache
    from vizvae.inference.latent import cached_encoding

    if checkpoint.config.get("model") not in LATENT_MODELS or _image_kind(checkpoint) is None:
        return []
    x_test = checkpoint_dataset(checkpoint.config).x_test
    cached_encoding(checkpoint.path, checkpoint.model, x_test, precomputed=True)
    return [cache.stored_result(checkpoint.path, "encoding", {"data": "test", "rows": len(x_test)})]


def precompute_global_local(checkpoint: Checkpoint) -> list[Path]:
    """The Global & local page's first view: Fig. 4.4 grids of every cluster, the batch study, the batch centre."""
    from vizvae.inference.global_local_store import store_default_view

    if checkpoint.config.get("model") not in FD_MODELS or _image_kind(checkpoint) is None:
        return []
    return store_default_view(checkpoint, checkpoint_dataset(checkpoint.config))


def precompute_disentanglement(checkpoint: Checkpoint) -> list[Path]:
    """The Disentanglement page's information of every latent about every factor (models of ``shapes``)."""
    from vizvae.evaluation.disentanglement import INFORMATION, MIG_BINS, cached_information
    from vizvae.inference import cache

    if (checkpoint.config.get("dataset") or {}).get("name") != "shapes":
        return []
    dataset = checkpoint_dataset(checkpoint.config)
    cached_information(checkpoint.path, checkpoint.model, dataset, precomputed=True)
    return [cache.stored_result(checkpoint.path, INFORMATION, {"bins": MIG_BINS, "rows": "train+test"})]


def precompute_inpainting(checkpoint: Checkpoint) -> list[Path]:
    """The Inpainting page's first Run: test image 0, a centred 14 x 14 hole, the default methods."""
    from vizvae.evaluation.inpainting_store import store_default_run

    if _image_kind(checkpoint) is None:
        return []
    return store_default_run(checkpoint, checkpoint_dataset(checkpoint.config))


TASKS: dict[str, Callable[[Checkpoint], list[Path]]] = {
    "acquisition": precompute_acquisition,
    "projections": precompute_projections,
    "fd": precompute_fd,
    "posterior": precompute_posterior,
    "encodings": precompute_encodings,
    "global_local": precompute_global_local,
    "disentanglement": precompute_disentanglement,
    "inpainting": precompute_inpainting,
}


def precompute(folder: str | Path, tasks: list[str] | None = None, log: Callable[[str], Any] = print) -> list[Path]:
    """Run ``tasks`` (default all) for the checkpoint in ``folder``; returns the files written."""
    from vizvae.inference import cache

    checkpoint = load_checkpoint(folder, device="cpu")
    for stale in cache.prune_stale(checkpoint.path):
        log(f"  removed stale {stale.name}")
    files: list[Path] = []
    for name in tasks or list(TASKS):
        started = time.perf_counter()
        written = [file for file in TASKS[name](checkpoint) if file is not None]
        if written:
            log(f"  {name}: {len(written)} file(s), {sum(f.stat().st_size for f in written) / 1e3:.1f} kB, "
                f"{time.perf_counter() - started:.1f} s")
        files += written
    return files


def precompute_command(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(max(1, int(args.threads)))
    names = args.names or [info.name for info in shipped_checkpoints()]
    tasks = [task for task in (args.tasks or list(TASKS)) if task != "hmc_lab"]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        print(f"error: unknown task(s) {unknown}; expected {list(TASKS)}", file=sys.stderr)
        return 2
    total = 0
    if "hmc_lab" in (args.tasks or ["hmc_lab"]):  # the HMC lab needs no model: its trainings, once
        print("hmc_lab", flush=True)
        from vizvae.inference.toy_store import store_defaults

        total += sum(file.stat().st_size for file in store_defaults(log=lambda line: print(line, flush=True)))
    for name in names if tasks else []:
        folder = resolve_checkpoint(name)
        print(f"{name}", flush=True)
        files = precompute(folder, tasks, log=lambda line: print(line, flush=True))
        total += sum(file.stat().st_size for file in files)
    print(f"stored {total / 1e3:.1f} kB in all")
    return 0


def add_precompute_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", help="shipped model names or checkpoint folders (default: every shipped model)")
    parser.add_argument("--tasks", nargs="*", help=f"which results ({', '.join(TASKS)}, hmc_lab; default all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 keeps results reproducible)")
    parser.set_defaults(func=precompute_command)
