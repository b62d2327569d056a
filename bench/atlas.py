"""The latent atlas, library and page: ``python -m vizvae bench --only atlas --json [-o sizes=100000,1000000]
[-o model=shapes-betavae-b4] [-o page_sizes=100000,1000000] [-o repeats=3] [-o scattergl=1]``.

First the library figures of ``vizvae.bench.atlas`` (encoding throughput and its ratio to the bare
forward pass, nearest-neighbour queries). Then, for each of ``page_sizes``, the page as a browser
meets it: the generated shapes are encoded and projected (PCA) into the user cache first, so the
cache is warm, then a real ``streamlit run`` serves the app with that cache and Chromium opens
``/atlas`` in a new session once the app is open and idle (as ``bench.browser`` times every page):

* ``atlas_first_paint_ms_<n>`` — from navigation start to the atlas chart drawn (plotly has laid
  out its traces), median of ``repeats`` new sessions;
* ``atlas_select_roundtrip_ms_<n>`` — from releasing the mouse at the end of a box drag to the
  encoder posterior of the selection drawn (the posterior chart laid out with the new item), median;
* ``atlas_peak_rss_mb_<n>`` — the server process' peak resident memory (VmHWM) over the whole run.

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
from vizvae.bench import atlas as library
from vizvae.checkpoint import REPO_ROOT, load_checkpoint, resolve_checkpoint
from vizvae.inference import atlas
from vizvae.inference.encodings import cached_encodings, encodings_directory
from vizvae.paths import user_cache_root

CHART_DRAWN = """(key) => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  return gd && gd._fullLayout && gd._fullData && gd._fullData.length > 0 ? performance.now() : null;
}"""
POSTERIOR_OF = """([key, before]) => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  const title = gd && gd._fullLayout && gd._fullLayout.title ? String(gd._fullLayout.title.text || '') : '';
  return title && title !== before ? performance.now() : null;
}"""
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


def _proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def drag_box(page, key: str, start: tuple[float, float] = (0.42, 0.42), end: tuple[float, float] = (0.55, 0.55)) -> float:
    """Drag a selection box across the chart's plot area (fractions of it); returns the browser's
    clock just before the mouse is released."""
    area = page.locator(f".st-key-{key} .nsewdrag").bounding_box()
    x0, y0 = area["x"] + area["width"] * start[0], area["y"] + area["height"] * start[1]
    x1, y1 = area["x"] + area["width"] * end[0], area["y"] + area["height"] * end[1]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.mouse.move(x1, y1, steps=4)
    before = float(page.evaluate("performance.now()"))
    page.mouse.up()
    return before


def one_session(browser, port: int, path: str, timeout_s: float) -> tuple[float, float]:
    """(first paint ms, box-select round trip ms) of one new session."""
    context, page = new_page(browser)
    try:
        page.goto(f"http://127.0.0.1:{port}{path}", timeout=timeout_s * 1000)
        first = float(page.wait_for_function(CHART_DRAWN, arg="atlas_chart", polling=10,
                                             timeout=timeout_s * 1000).json_value())
        page.wait_for_timeout(800)  # let the first run's tail (below the chart) finish before the drag
        before_title = page.evaluate("""() => { const gd = document.querySelector('.st-key-atlas_posterior .js-plotly-plot');
            return gd && gd._fullLayout.title ? String(gd._fullLayout.title.text || '') : ''; }""")
        released = drag_box(page, "atlas_chart")
        drawn = float(page.wait_for_function(POSTERIOR_OF, arg=["atlas_posterior", before_title], polling=10,
                                             timeout=timeout_s * 1000).json_value())
        return first, drawn - released
    finally:
        context.close()


def page_figures(browser, model: str, n: int, repeats: int, timeout_s: float) -> dict[str, Any]:
    warm_cache(model, n)
    harness = browser_harness()
    server = Server(REPO_ROOT, harness.free_port(), env={"VIZVAE_CACHE_DIR": str(user_cache_root())})
    firsts, rounds = [], []
    try:
        server.wait_serving()
        time_page(browser, server.port, "/", None, timeout_s)  # the app is open ...
        server.wait_idle()  # ... and idle
        for _ in range(repeats):
            first, roundtrip = one_session(browser, server.port, f"/atlas?model={model}&data=shapes-{n}", timeout_s)
            firsts.append(first)
            rounds.append(roundtrip)
        peak = _proc_kb(server.process.pid, "VmHWM") / 1024
    finally:
        server.close()
    return {f"atlas_first_paint_ms_{n}": round(statistics.median(firsts), 1),
            f"atlas_select_roundtrip_ms_{n}": round(statistics.median(rounds), 1),
            f"atlas_peak_rss_mb_{n}": round(peak, 1)}


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
            for n in [int(s) for s in str(options.get("page_sizes", "100000,1000000")).split(",")]:
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
