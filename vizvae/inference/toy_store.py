"""The HMC lab's trainings on disk: a training depends only on its settings and on the code that
trains (no checkpoint), so a stored one is keyed by both — the settings and a SHA-256 of the sources
of the sampler, the losses and the targets. Shipped in ``assets/hmc_lab/`` for each target's
first view (``python -m vizvae precompute --tasks hmc_lab``), computed once into the user cache
(``<user cache>/hmc_lab/``) for any other. A file written by other code is ignored, as is one
that does not hold what ``to_arrays`` writes. Plain arrays in ``.npz``, never a pickle.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vizvae.checkpoint import REPO_ROOT
from vizvae.inference import cache
from vizvae.inference.toy import ToySetup
from vizvae.inference.toy_lab import ToyChains, ToyRun

SHIPPED_DIR = REPO_ROOT / "assets" / "hmc_lab"
SOURCES = ("kernels/hmc.py", "kernels/stein.py", "inference/toy.py", "inference/targets.py", "inference/toy_lab.py")
HISTORY_PREFIX = "history."


def code_fingerprint() -> str:
    """SHA-256 of the sources a training runs through: a change to any of them retires stored trainings."""
    return cache.source_fingerprint(SOURCES)


def run_params(settings: tuple, training: tuple, n_chains: int) -> dict[str, Any]:
    return {"settings": list(settings), "training": list(training), "chains": int(n_chains), "code": code_fingerprint()}


def _file_name(params: dict[str, Any]) -> str:
    key = hashlib.sha256(cache.canonical_params(params).encode()).hexdigest()[:16]
    return f"toy-{params['settings'][0]}-{key}.npz"


def to_arrays(run: ToyRun) -> dict[str, np.ndarray]:
    result = run.result
    arrays = {"step_sizes": result.step_sizes.numpy(), "inflation": result.inflation.numpy(),
              "after_samples": run.after.samples, "after_acceptance": np.array(run.after.acceptance),
              "after_divergences": np.array(run.after.n_divergences)}
    arrays.update({HISTORY_PREFIX + key: value.numpy() for key, value in result.history.items()})
    return arrays


def from_arrays(arrays: dict[str, np.ndarray], setup: ToySetup, per_dimension: bool) -> ToyRun | None:
    """The run back, with its hyper-parameters rebuilt; None when the arrays do not fit the setup."""
    from vizvae.kernels.hmc import HMCHyperparameters
    from vizvae.kernels.stein import HMCTrainingResult

    step_sizes = torch.as_tensor(arrays["step_sizes"])
    inflation = torch.as_tensor(arrays["inflation"])
    layers = [slice(0, 1), slice(1, 2)] if per_dimension else None
    if step_sizes.shape != setup.step_sizes.shape or inflation.shape != (2 if per_dimension else 1,):
        return None
    if not (torch.isfinite(step_sizes).all() and (step_sizes > 0).all() and torch.isfinite(inflation).all()
            and (inflation > 0).all()):
        return None
    hyper = HMCHyperparameters(2, step_sizes.shape[0], setup.n_leapfrog, layer_slices=layers, step_sizes=step_sizes,
                               inflation=inflation)
    history = {key[len(HISTORY_PREFIX):]: torch.as_tensor(value) for key, value in arrays.items()
               if key.startswith(HISTORY_PREFIX)}
    after = ToyChains(np.asarray(arrays["after_samples"]), float(arrays["after_acceptance"]),
                      int(arrays["after_divergences"]))
    return ToyRun(HMCTrainingResult(step_sizes, inflation, history, hyper), after)


def load(settings: tuple, training: tuple, n_chains: int, setup: ToySetup) -> ToyRun | None:
    params = run_params(settings, training, n_chains)
    text = cache.canonical_params(params)
    for folder in (SHIPPED_DIR, cache.user_cache_root() / "hmc_lab"):
        file = folder / _file_name(params)
        if not file.is_file():
            continue
        try:
            arrays = cache.read_npz(file)  # headers checked before anything is allocated
            if str(arrays.pop("__params__")) != text:
                continue
            run = from_arrays(arrays, setup, bool(training[-1]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, TypeError):
            continue
        if run is not None:
            return run
    return None


def store(settings: tuple, training: tuple, n_chains: int, run: ToyRun, *, shipped: bool = False) -> Path | None:
    params = run_params(settings, training, n_chains)
    folder = SHIPPED_DIR if shipped else cache.user_cache_root() / "hmc_lab"
    arrays = {**to_arrays(run), "__params__": np.array(cache.canonical_params(params))}
    return cache.write_atomically(folder / _file_name(params),
                                   lambda handle: np.savez_compressed(handle, **arrays))


def stored_files() -> list[Path]:
    return sorted(SHIPPED_DIR.glob("toy-*.npz"))


def prune_shipped() -> list[Path]:
    """Remove shipped trainings written by other code (their key can never be asked for again)."""
    removed = []
    for file in stored_files():
        try:
            code = json.loads(str(cache.read_npz(file)["__params__"])).get("code")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            code = None
        if code != code_fingerprint():
            file.unlink(missing_ok=True)
            removed.append(file)
    return removed


def store_defaults(log=print) -> list[Path]:
    """Train and ship the HMC lab's first view of every target (``toy_lab.default_lab_settings``)."""
    import time

    from vizvae.inference.targets import TOY_TARGETS
    from vizvae.inference.toy import STEP_SIZE_RANGES, toy_setup
    from vizvae.inference.toy_lab import LAB_CHAINS, default_lab_settings, train_toy_run

    for stale in prune_shipped():
        log(f"  removed stale {stale.name}")
    files = []
    for target in TOY_TARGETS:
        started = time.perf_counter()
        settings, training = default_lab_settings(target)
        _, n_transitions, step_range, proposal_std, seed = settings
        setup = toy_setup(target, proposal_std, STEP_SIZE_RANGES[step_range], n_transitions, seed=seed)
        n_iterations, lr_steps, lr_inflation, per_dimension = training
        run = train_toy_run(lambda *_: None, setup, n_iterations, lr_steps, lr_inflation, seed=seed,
                            per_dimension=per_dimension, n_chains=LAB_CHAINS)
        file = store(settings, training, LAB_CHAINS, run, shipped=True)
        if file is not None:
            files.append(file)
            log(f"  hmc_lab {target}: {file.stat().st_size / 1e3:.1f} kB, {time.perf_counter() - started:.1f} s, "
                f"acceptance {run.after.acceptance:.2f}")
    return files
