"""App responsiveness: cold start in Chromium, a 10x10 traversal grid, a cached projection.

Keys: ``cold_start_s`` and ``cold_start_ratio`` (``streamlit run`` spawned -> first page drawn in
Chromium, against a bare two-page Streamlit app started alternately with it; see ``browser.py``),
``traversal_grid_ms`` (decode a 10x10 traversal grid of the shipped 16-D VAE, median of interleaved repetitions), ``projection_cached_ms`` (load the cached
UMAP projection of the test set, median). Also ``heavy_modules_at_start``: heavy modules the
app imported before any page needed them (should be empty).
"""

from __future__ import annotations

import subprocess
import time

import torch

from vizvae.bench.timing import interleaved_medians

SHIPPED_16D = "mnist-vae-16d"


def traversal_grid_ms(repeats: int = 15) -> float:
    from vizvae.checkpoint import load_checkpoint, resolve_checkpoint
    from vizvae.inference.latent import decode_mean, traversal_latents, traversal_values

    model = load_checkpoint(resolve_checkpoint(SHIPPED_16D), device="cpu").model
    base = torch.zeros(model.latent_dim)
    dims = list(range(10))

    def grid():
        latents = traversal_latents(base, dims, traversal_values(3.0, 10))  # (10, 10, latent)
        return decode_mean(model, latents.reshape(-1, model.latent_dim))

    return 1000 * interleaved_medians({"grid": grid}, repeats=repeats)["grid"]


def projection_cached_ms(repeats: int = 15) -> tuple[float, float]:
    """(median cached load in ms, seconds the first computation took if it was not cached yet)."""
    from vizvae.checkpoint import load_checkpoint, resolve_checkpoint
    from vizvae.data import load_dataset
    from vizvae.inference.latent import encode_dataset
    from vizvae.inference.projection import project

    path = resolve_checkpoint(SHIPPED_16D)
    model = load_checkpoint(path, device="cpu").model
    x = load_dataset("mnist", binarize=True).x_test
    means = encode_dataset(model, x).mean
    started = time.perf_counter()
    project(means, "umap", folder=path)  # shipped with the model, or computed once into the user cache
    first = time.perf_counter() - started

    def load():
        result = project(means, "umap", folder=path)
        assert result.from_cache
        return result

    return 1000 * interleaved_medians({"load": load}, repeats=repeats)["load"], first


def cold_start(starts: int = 3) -> dict[str, float | None]:
    """``cold_start_s``, ``cold_start_bare_s`` and ``cold_start_ratio`` (see ``browser.cold_start``),
    all None without Chromium."""
    from bench import browser as web

    harness = web.browser_harness()
    if harness is None:
        return {"cold_start_s": None, "cold_start_bare_s": None, "cold_start_ratio": None}
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = harness.launch_chromium(playwright)
        try:
            return web.cold_start(chromium, starts)
        finally:
            chromium.close()


def heavy_modules_at_start() -> list[str]:
    """Import app.py's own imports in a fresh interpreter and list heavy modules they pulled in."""
    code = (
        "import sys, runpy; sys.argv=['app.py'];\n"
        "import pages._common\n"
        "heavy=[m for m in ('umap','sklearn.manifold','pynndescent','numba','arviz','scipy.stats') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    from vizvae.checkpoint import REPO_ROOT

    out = subprocess.run(["python", "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    return [m for m in out.stdout.strip().split(",") if m]


def run(options: dict[str, str]) -> dict[str, object]:
    torch.set_num_threads(int(options.get("threads", 2)))
    grid_ms = traversal_grid_ms()
    cached_ms, first_s = projection_cached_ms()
    return {
        **cold_start(int(options.get("starts", 3))),
        "heavy_modules_at_start": heavy_modules_at_start(),
        "traversal_grid_ms": round(grid_ms, 2),
        "projection_cached_ms": round(cached_ms, 2),
        "projection_first_compute_s": round(first_s, 2),
    }
