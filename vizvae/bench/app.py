"""App responsiveness: cold start in Chromium, a 10x10 traversal grid, a cached projection.

Keys: ``cold_start_s`` (``streamlit run`` spawned -> first page served and rendered in
Chromium; median of a few starts), ``traversal_grid_ms`` (decode a 10x10 traversal grid of the
shipped 16-D VAE, median of interleaved repetitions), ``projection_cached_ms`` (load the cached
UMAP projection of the test set, median). Also ``heavy_modules_at_start``: heavy modules the
app imported before any page needed them (should be empty).
"""

from __future__ import annotations

import statistics
import subprocess
import time

import numpy as np
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
    from vizvae.inference.projection import cache_folder, project, weights_digest

    path = resolve_checkpoint(SHIPPED_16D)
    model = load_checkpoint(path, device="cpu").model
    x = load_dataset("mnist", binarize=True).x_test
    means = encode_dataset(model, x).mean
    key = weights_digest(model)
    folder = cache_folder(path, key)
    started = time.perf_counter()
    project(means, "umap", cache_dir=folder, weights_key=key)  # computes once if needed
    first = time.perf_counter() - started

    def load():
        result = project(means, "umap", cache_dir=folder, weights_key=key)
        assert result.from_cache
        return result

    return 1000 * interleaved_medians({"load": load}, repeats=repeats)["load"], first


def browser_harness():
    """The repository's browser-test harness (``tests/e2e/harness.py``, with playwright), or None
    where vizvae runs without its repository or without playwright: then there is no cold start
    to measure."""
    try:
        from tests.e2e import harness
    except ImportError:
        return None
    return harness if harness.CHROMIUM is not None else None


def cold_start_s(starts: int = 3) -> tuple[float, list[str]]:
    harness = browser_harness()
    if harness is None:
        return float("nan"), []
    from playwright.sync_api import sync_playwright

    free_port, launch_chromium, start_streamlit, wait_for_app = (
        harness.free_port, harness.launch_chromium, harness.start_streamlit, harness.wait_for_app)
    times = []
    heavy: list[str] = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for _ in range(starts):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            started = time.perf_counter()
            process = start_streamlit(port, env={"VIZVAE_REPORT_MODULES": "1"})
            try:
                page = browser.new_page()
                while True:  # poll until the server accepts the page load
                    try:
                        page.goto(url, timeout=2000)
                        break
                    except Exception:  # noqa: BLE001 - connection refused while it boots
                        if process.poll() is not None or time.perf_counter() - started > 60:
                            raise RuntimeError("streamlit did not start")
                        time.sleep(0.1)
                page.wait_for_selector('[data-testid="stMain"] [data-testid="stImage"] img', timeout=60000)
                settled_at = wait_for_app(page)  # when the run was first seen finished
                times.append(settled_at - started)
                page.close()
            finally:
                process.terminate()
                process.wait(10)
        browser.close()
    heavy = heavy_modules_at_start()
    return statistics.median(times), heavy


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
    cold, heavy = cold_start_s(int(options.get("starts", 3)))
    return {
        "cold_start_s": round(cold, 2) if np.isfinite(cold) else None,
        "heavy_modules_at_start": heavy,
        "traversal_grid_ms": round(grid_ms, 2),
        "projection_cached_ms": round(cached_ms, 2),
        "projection_first_compute_s": round(first_s, 2),
    }
