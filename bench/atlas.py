"""The latent atlas, library and page: ``python -m vizvae bench --only atlas --json [-o sizes=100000,1000000]
[-o model=shapes-betavae-b4] [-o page_sizes=100000,1000000] [-o repeats=3] [-o scattergl=1]``.

First the library figures of ``vizvae.bench.atlas`` (encoding throughput and its ratio to the bare
forward pass, nearest-neighbour queries). Then, for each of ``page_sizes``, the page as a browser
meets it: the generated shapes are encoded and projected (PCA) into the user cache first, so the
cache is warm, then a real ``streamlit run`` serves the app with that cache and Chromium opens
``/atlas`` in a new session once the app is open and idle (as ``bench.browser`` times every page):

* ``atlas_first_paint_ms_<n>`` — from navigation start to the atlas drawn (its canvas stamps the
  time it finished drawing the density and the points), for a returning visitor: a new tab and Streamlit session of a browser that has
  opened the atlas before, so Streamlit's and plotly.js' scripts come from its cache; median of
  ``repeats`` browsers. ``atlas_first_paint_new_browser_ms_<n>``: the same for a browser's first
  visit, scripts fetched and compiled;
* ``atlas_select_roundtrip_ms_<n>`` — from releasing the mouse at the end of a box drag to the
  encoder posterior of the selection drawn (its chart's image loaded, for the new item), median
  (``..._new_browser_ms_<n>``: in the first visit);
* ``atlas_peak_rss_mb_<n>`` — the server process' peak resident memory (VmHWM) over the whole run;
* ``plotly_floor_first_paint_ms`` (and ``..._new_browser_ms``) — a bare Streamlit page with one
  two-point plotly chart, timed the same way: the part of the first paint that is Streamlit and
  plotly.js themselves.

With ``scattergl=1`` it also times what the atlas chose not to do, in the same run: a bare
Streamlit page drawing the same n points as one plotly WebGL scatter (``scattergl_all_first_paint_ms_<n>``),
and the figure's size (``scattergl_all_figure_mb_<n>``) against the atlas'.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.browser import Server, browser_harness, new_page, time_page
from bench.load import proc_kb
from vizvae.bench import atlas as library
from vizvae.checkpoint import REPO_ROOT, load_checkpoint, resolve_checkpoint
from vizvae.inference import atlas
from vizvae.inference.encodings import cached_encodings, encodings_directory
from vizvae.paths import user_cache_root

CHART_DRAWN = """(key) => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  return gd && gd._fullLayout && gd._fullData && gd._fullData.length > 0 ? performance.now() : null;
}"""
# the atlas' canvas (pages/_atlas_canvas.js) stamps data-drawn with the time it finished drawing
CANVAS_DRAWN = """(key) => {
  const root = document.querySelector(`.st-key-${key} .atlas`);
  return root && root.dataset.drawn && Number(root.dataset.points) > 0 ? Number(root.dataset.drawn) : null;
}"""
POSTERIOR_SRC = """(key) => { const img = document.querySelector(`.st-key-${key} img`); return img ? img.src : ''; }"""
POSTERIOR_OF = """([key, before]) => {
  const img = document.querySelector(`.st-key-${key} img`);
  return img && img.src !== before && img.complete ? performance.now() : null;
}"""
FLOOR_APP = """import plotly.graph_objects as go, streamlit as st
st.plotly_chart(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])), key="floor")
"""
SCATTERGL_APP = """import numpy as np, plotly.graph_objects as go, streamlit as st
coords = np.load({path!r})
st.plotly_chart(go.Figure(go.Scattergl(x=coords[:, 0], y=coords[:, 1], mode="markers", marker=dict(size=3),
                customdata=np.arange(len(coords), dtype=np.int32))), key="all_points")
"""


def warm_cache(name: str, n: int) -> Path:
    """Generate, encode and project (PCA) n shapes into the user cache; returns the projection file."""
    checkpoint = load_checkpoint(resolve_checkpoint(name), device="cpu")
    data = atlas.open_generated(n)
    means, _, _ = cached_encodings(checkpoint.path, checkpoint.model, data.items)
    directory = encodings_directory(checkpoint.path, data.items)[0]
    atlas.atlas_projection(directory, means, "pca")
    return atlas.projection_file(directory, "pca", 0)


def drag_box(page, key: str, start: tuple[float, float] = (0.42, 0.42), end: tuple[float, float] = (0.55, 0.55)) -> float:
    """Drag a selection box across the atlas canvas (fractions of it); returns the browser's clock
    just before the mouse is released."""
    return browser_harness().drag(page, f".st-key-{key} canvas", start, end)


def one_visit(page, port: int, path: str, timeout_s: float) -> tuple[float, float]:
    """(first paint ms, box-select round trip ms) of one new session in ``page``."""
    page.goto(f"http://127.0.0.1:{port}{path}", timeout=timeout_s * 1000)
    first = float(page.wait_for_function(CANVAS_DRAWN, arg="atlas_chart", polling=10,
                                         timeout=timeout_s * 1000).json_value())
    page.wait_for_timeout(800)  # let the first run's tail finish before the drag
    before = page.evaluate(POSTERIOR_SRC, "atlas_posterior")
    released = drag_box(page, "atlas_chart")
    drawn = float(page.wait_for_function(POSTERIOR_OF, arg=["atlas_posterior", before], polling=10,
                                         timeout=timeout_s * 1000).json_value())
    return first, drawn - released


def one_browser(browser, port: int, path: str, timeout_s: float) -> dict[str, tuple[float, float]]:
    """A new browser profile visits the atlas twice, each time in a new tab and Streamlit session:
    first with nothing cached in the browser (Streamlit's and plotly.js' scripts are fetched and
    compiled), then as a returning visitor (they come from the browser's cache)."""
    context, first_tab = new_page(browser)
    try:
        cold = one_visit(first_tab, port, path, timeout_s)
        first_tab.close()
        warm = one_visit(context.new_page(), port, path, timeout_s)
    finally:
        context.close()
    return {"cold": cold, "warm": warm}


def page_figures(browser, model: str, n: int, repeats: int, timeout_s: float) -> dict[str, Any]:
    warm_cache(model, n)
    harness = browser_harness()
    server = Server(REPO_ROOT, harness.free_port(), env={"VIZVAE_CACHE_DIR": str(user_cache_root())})
    visits = []
    try:
        server.wait_serving()
        time_page(browser, server.port, "/", None, timeout_s)  # the app is open ...
        server.wait_idle()  # ... and idle
        for _ in range(repeats):
            visits.append(one_browser(browser, server.port, f"/atlas?model={model}&data=shapes-{n}", timeout_s))
        peak = proc_kb(server.process.pid, "VmHWM") / 1024
    finally:
        server.close()

    def median(kind: str, which: int) -> float:
        return round(statistics.median(v[kind][which] for v in visits), 1)

    return {f"atlas_first_paint_ms_{n}": median("warm", 0), f"atlas_select_roundtrip_ms_{n}": median("warm", 1),
            f"atlas_first_paint_new_browser_ms_{n}": median("cold", 0),
            f"atlas_select_roundtrip_new_browser_ms_{n}": median("cold", 1),
            f"atlas_peak_rss_mb_{n}": round(peak, 1)}


def plotly_floor(browser, timeout_s: float) -> dict[str, float]:
    """First paint of a bare Streamlit page holding one two-point plotly chart, in a new browser
    and as a returning visitor: what any plotly chart costs on this machine before the atlas' own work."""
    with tempfile.TemporaryDirectory(prefix="vizvae-plotly-floor-") as folder:
        Path(folder, "app.py").write_text(FLOOR_APP)
        server = Server(Path(folder), browser_harness().free_port())
        try:
            server.wait_serving()
            context, page = new_page(browser)
            try:
                times = []
                for _ in range(2):
                    page.goto(server.url, timeout=timeout_s * 1000)
                    times.append(float(page.wait_for_function(CHART_DRAWN, arg="floor", polling=10,
                                                              timeout=timeout_s * 1000).json_value()))
                    page.close()
                    page = context.new_page()
            finally:
                context.close()
        finally:
            server.close()
    return {"plotly_floor_first_paint_new_browser_ms": round(times[0], 1), "plotly_floor_first_paint_ms": round(times[1], 1)}


def scattergl_figures(browser, projection_file: Path, n: int, timeout_s: float) -> dict[str, Any]:
    """A bare Streamlit page drawing all n points as one WebGL scatter: what drawing them all costs."""
    import plotly.graph_objects as go

    coords = np.load(projection_file)
    size = len(go.Figure(go.Scattergl(x=coords[:, 0], y=coords[:, 1], mode="markers",
                                      customdata=np.arange(n, dtype=np.int32))).to_json()) / 1e6
    with tempfile.TemporaryDirectory(prefix="vizvae-scattergl-") as folder:
        Path(folder, "app.py").write_text(SCATTERGL_APP.format(path=str(projection_file)))
        server = Server(Path(folder), browser_harness().free_port())
        try:
            server.wait_serving()
            context, page = new_page(browser)
            try:
                page.goto(server.url, timeout=timeout_s * 1000)
                first = float(page.wait_for_function(CHART_DRAWN, arg="all_points", polling=10,
                                                     timeout=timeout_s * 1000).json_value())
            finally:
                context.close()
        finally:
            server.close()
    return {f"scattergl_all_first_paint_ms_{n}": round(first, 1), f"scattergl_all_figure_mb_{n}": round(size, 2)}


def run(options: dict[str, Any]) -> dict[str, Any]:
    results = library.run(options) if str(options.get("library", "1")) != "0" else {}
    harness = browser_harness()
    if harness is None:
        results["atlas_page"] = "skipped: needs the repository's browser harness (playwright and Chromium)"
        return results
    model = str(options.get("model", "shapes-betavae-b4"))
    repeats, timeout_s = int(options.get("repeats", 3)), float(options.get("timeout", 600))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = harness.launch_chromium(playwright)
        try:
            results.update(plotly_floor(browser, timeout_s))
            for n in [int(s) for s in str(options.get("page_sizes", "100000,1000000")).split(",") if s.strip()]:
                results.update(page_figures(browser, model, n, repeats, timeout_s))
                if str(options.get("scattergl", "1")) != "0":
                    file = atlas.projection_file(encodings_directory(
                        resolve_checkpoint(model), atlas.open_generated(n).items)[0], "pca", 0)
                    results.update(scattergl_figures(browser, file, n, timeout_s))
        finally:
            browser.close()
    results["atlas_reference"] = ("TensorBoard's projector: ~10^5 points; Embedding Atlas: 'a few million' points "
                                  "(both as their documentation states)")
    return results
