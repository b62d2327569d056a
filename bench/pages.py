"""Every page as a user meets it: ``python -m vizvae bench --only pages [--json] [-o KEY=VALUE ...]``.

For each page on a shipped model that suits it, the first render of a shared link and the first
thing a user does there (a click, a slider, a button), timed until the result is drawn (a page
that hands work to a background job is timed until the job's bar has gone), twice:

* through AppTest (``streamlit.testing.v1``) in this process, as a new user: Streamlit's caches
  emptied and an empty user cache (``VIZVAE_CACHE_DIR``) before each page, after one untimed run of
  the app's first page (the app is open; imports a process pays once are not one page's time);
* in Chromium against a real ``streamlit run`` started for that page alone (``browser.py``), after
  one visit to the app's first page in another session and until the server is idle (the imports
  the app makes in the background after its first page are done; ``browser_idle_wait_s``): nothing
  of the page in Streamlit's caches.

The shipped files under ``assets/`` are met as shipped: what a run writes there is undone after it
(``leftovers.py``). Every page slower than ``SLOW_MS`` in AppTest is run again, as a new user, under
cProfile, and the top functions by cumulative time (without the frames every run passes through)
are printed. The profiled run is in a warm process: its total can be far below the timed one when
the first run paid a one-off cost (numba compiling UMAP, say); the timed run is the figure.

Keys: ``pages`` {name: {first_ms, interaction_ms, interaction, model, browser_first_ms,
browser_interaction_ms, error?, shown_errors?, browser_error?}}; ``acquisition_row_s`` and
``acquisition_row_all_s`` (``acquisition_row_s()``), ``acquisition_step_ms`` (the Acquisition page's
Step, AppTest), ``slowest_interaction_ms`` (over AppTest and browser), ``cold_start_s``,
``cold_start_bare_s``, ``cold_start_ratio`` (``browser.cold_start``), ``profiles`` {name: [lines]},
``assets_undone``. A key not measured in a run is None.

Options: ``pages=posterior,latent_space`` (names in ``CASES``, or a page's name for all its
entries), ``browser=0`` (AppTest only), ``profile=0``, ``starts=3`` (cold starts of each app, 0 for
none), ``acq_row=5``, ``timeout=900`` (s for one render or interaction).
"""

from __future__ import annotations

import cProfile
import io
import math
import os
import pstats
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Callable
from urllib.parse import urlencode

import numpy as np
import streamlit as st  # the benchmark drives the app: AppTest and its caches
from streamlit import logger as streamlit_logger
from streamlit.testing.v1 import AppTest

from bench import browser as web
from bench.leftovers import WriteRecorder
from vizvae.checkpoint import REPO_ROOT
from vizvae.errors import VizvaeError

SLOW_MS = 1000.0
PROFILE_LINES = 8
APP = REPO_ROOT / "app.py"
JOB_POLL_S = 0.05  # how often a running background job is looked at (pages/_common.py polls every 0.5 s)
DEFAULT_PAGE = "model"  # app.py's first page
CACHE_ENV = "VIZVAE_CACHE_DIR"  # where the app keeps what it computes itself (vizvae.inference.cache)


def _click(key: str) -> Callable[[AppTest], AppTest]:
    return lambda at: at.button(key=key).click().run()


def _toggle(key: str) -> Callable[[AppTest], AppTest]:
    return lambda at: at.toggle(key=key).set_value(not at.toggle(key=key).value).run()


def _nudge(key: str, direction: int = -1) -> Callable[[AppTest], AppTest]:
    """Move a slider one step, as an arrow key does (the other way at its end)."""
    def act(at: AppTest) -> AppTest:
        slider = at.slider(key=key)
        step = slider.step or 1
        value = slider.value + direction * step
        if not slider.min <= value <= slider.max:
            value = slider.value - direction * step
        return slider.set_value(value).run()
    return act


def _step_up(key: str) -> Callable[[AppTest], AppTest]:
    return lambda at: at.number_input(key=key).increment().run()


@dataclass(frozen=True)
class PageCase:
    """A page on a model, and the first thing a user does there (in AppTest and in the browser)."""

    name: str  # key in the results: the page's name, or page@model for a second model
    page: str  # pages/<page>.py
    query: dict[str, str]
    interaction: str  # what the user does, in words
    apptest_action: Callable[[AppTest], AppTest]
    browser_action: Callable = field(repr=False)

    @property
    def path(self) -> str:
        """The page's address: app.py's first page (the model page) is served at /, not at /model."""
        where = "" if self.page == DEFAULT_PAGE else self.page
        return f"/{where}?{urlencode(self.query)}"


CASES = (
    PageCase("model", "model", {"model": "mnist-vae-2d"}, "the samples' seed + 1",
             _step_up("model_seed"), web.step_up("model_seed")),
    PageCase("latent_space", "latent_space", {"model": "mnist-betavae-16d-b4", "method": "umap"},
             "the traversal range slider", _nudge("traversal_span"), web.nudge("traversal_span")),
    PageCase("atlas", "atlas", {"model": "shapes-betavae-b4"}, "the neighbours' k slider",
             _nudge("atlas_k"), web.nudge("atlas_k")),
    PageCase("global_local", "global_local", {"model": "mnist-ugvae"}, "Compute the Fréchet distances",
             _click("gl_fd_compute"), web.click("gl_fd_compute")),
    PageCase("disentanglement", "disentanglement", {"model": "shapes-betavae-b4"}, "the traversal range slider",
             _nudge("disentanglement_span"), web.nudge("disentanglement_span")),
    PageCase("posterior", "posterior", {"model": "mnist-hmcvae-2d"}, "Compute the gaps",
             _toggle("posterior_gaps_on"), web.toggle("posterior_gaps_on")),
    PageCase("posterior@mnist-hhvae", "posterior", {"model": "mnist-hhvae"}, "the chain stepper",
             _nudge("posterior_step"), web.nudge("posterior_step")),
    PageCase("hmc_lab", "hmc_lab", {"target": "dual_moon"}, "Train on the dual moon",
             _click("lab_train"), web.click("lab_train")),
    PageCase("acquisition", "acquisition", {"model": "boston-hhvaem"}, "Step",
             _click("acq_forward"), web.click("acq_forward")),
    PageCase("inpainting", "inpainting", {"model": "mnist-hhvae"}, "Run",
             _click("inpaint_run"), web.click("inpaint_run")),
)


def chosen_cases(option: str | None) -> list[PageCase]:
    if not option:
        return list(CASES)
    wanted = {name.strip() for name in option.split(",") if name.strip()}
    cases = [c for c in CASES if c.name in wanted or c.page in wanted]
    unknown = wanted - {c.name for c in cases} - {c.page for c in cases}
    if unknown:
        raise VizvaeError(f"unknown page(s) {sorted(unknown)}; expected some of {[c.name for c in CASES]}")
    return cases


# -- AppTest ----------------------------------------------------------------------------------------------------
def empty_streamlit_caches() -> None:
    streamlit_logger.set_log_level("error")  # AppTest's first run parses the config, which sets it back
    st.cache_data.clear()
    st.cache_resource.clear()


def _page_errors(at: AppTest) -> list[str]:
    return [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]


def job_running(at: AppTest) -> bool:
    """Whether a progress bar short of 100 % is drawn: a background job still working (a bar that
    a finished loop leaves at 100 % is not one)."""
    return any(bar.proto.value < 100 for bar in at.get("progress"))


def until_done(at: AppTest, deadline: float) -> AppTest:
    """Run again while a background job is working, as its bar's fragment does in a browser, so
    that a page is timed until its result is on screen."""
    while job_running(at):
        if time.perf_counter() > deadline:
            raise TimeoutError("a background job was still running at the time limit")
        time.sleep(JOB_POLL_S)
        at = at.run()
    return at


def apptest_case(case: PageCase, timeout_s: float) -> dict[str, Any]:
    """First render and interaction of ``case`` in a new AppTest session (ms), or the error that
    stopped it."""
    at = AppTest.from_file(str(APP), default_timeout=timeout_s)
    at.query_params.update(case.query)
    at.switch_page(f"pages/{case.page}.py")
    result: dict[str, Any] = {"model": case.query.get("model"), "interaction": case.interaction}
    try:
        started = time.perf_counter()
        at = until_done(at.run(), started + timeout_s)
        result["first_ms"] = round(1000 * (time.perf_counter() - started), 1)
        if at.exception:
            raise RuntimeError(_page_errors(at)[0])
        started = time.perf_counter()
        at = until_done(case.apptest_action(at), started + timeout_s)
        result["interaction_ms"] = round(1000 * (time.perf_counter() - started), 1)
        if at.exception:
            raise RuntimeError(_page_errors(at)[0])
        if at.error:  # the page ran, but told the user something failed
            result["shown_errors"] = [str(e.value)[:200] for e in at.error][:3]
    except Exception as err:  # noqa: BLE001 - a page that fails is reported, the others still run
        result["error"] = f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300] if str(err).strip() else ''}"
    return result


class ThreadProfiler:
    """cProfile over the threads started while it is active: AppTest runs the script in its own
    thread, where a profiler enabled in the calling thread would see nothing."""

    def __init__(self):
        self.profiles: list[cProfile.Profile] = []

    def _start_in_thread(self, *_):
        profile = cProfile.Profile()
        self.profiles.append(profile)
        profile.enable()  # replaces this hook for the rest of the thread

    def __enter__(self) -> "ThreadProfiler":
        threading.setprofile(self._start_in_thread)
        return self

    def __exit__(self, *exc) -> None:
        threading.setprofile(None)
        for profile in self.profiles:
            profile.disable()

    def top(self, n: int = PROFILE_LINES) -> list[str]:
        if not self.profiles:
            return []
        stream = io.StringIO()
        stats = pstats.Stats(self.profiles[0], stream=stream)
        for profile in self.profiles[1:]:
            stats.add(profile)
        stats.sort_stats("cumulative").print_stats(400)  # the frames every run passes through go first
        rows = [line for line in stream.getvalue().splitlines() if line.strip() and line.strip()[0].isdigit()]
        return top_own_functions(rows, n)


def top_own_functions(rows: list[str], n: int) -> list[str]:
    """The profile's total, then its first ``n`` rows without the frames every run passes through
    (the script runner, app.py's frame, a page module's hand-over): they hold everything."""
    plumbing = ("threading.py", "/streamlit/", "{built-in method builtins.exec}", "<string>", "cProfile",
                "/contextlib.py", "runpy", "(<module>)", "(run_app)", "app.py:", "concurrent/futures/",
                "torch/utils/_contextlib.py", "torch/nn/modules/module.py", "of '_thread.lock' objects")
    total = [row.strip() for row in rows if "function calls" in row][:1]
    own = [row for row in rows if "function calls" not in row and not any(p in row for p in plumbing)]
    return total + own[:n]


def profile_case(case: PageCase, timeout_s: float) -> list[str]:
    empty_streamlit_caches()
    with ThreadProfiler() as profiler:
        apptest_case(case, timeout_s)
    return profiler.top()


@contextmanager
def new_user():
    """As a first visitor meets the app: Streamlit's caches empty, an empty user cache
    (``VIZVAE_CACHE_DIR``), the shipped files under assets/ as shipped (what the run writes there is
    undone on the way out). Yields the list that collects what was undone."""
    undone: list[str] = []
    previous = os.environ.get(CACHE_ENV)
    with tempfile.TemporaryDirectory(prefix="vizvae-bench-user-cache-") as user_cache, \
            WriteRecorder(REPO_ROOT / "assets") as writes:
        os.environ[CACHE_ENV] = user_cache
        try:
            empty_streamlit_caches()
            yield undone
        finally:
            empty_streamlit_caches()
            undone += writes.undo()
            if previous is None:
                os.environ.pop(CACHE_ENV, None)
            else:
                os.environ[CACHE_ENV] = previous


def warm_imports(cases: list[PageCase], timeout_s: float) -> None:
    """Import the page modules and run the app's first page (the model page, seed changed) once,
    untimed: as if the app were already open, so that no page's time holds the imports the first
    page of a process pays (the browser column, a fresh server per page, holds them)."""
    for page in dict.fromkeys(case.page for case in cases):
        try:
            import_module(f"pages.{page}")
        except Exception:  # noqa: BLE001 - the page's own run reports it
            pass
    with new_user():
        apptest_case(next(case for case in CASES if case.page == DEFAULT_PAGE), timeout_s)


# -- the browser ------------------------------------------------------------------------------------------------
def browser_cases(cases: list[PageCase], results: dict[str, dict], timeout_s: float, starts: int) -> dict[str, Any]:
    """Browser times into ``results`` (per case, or its error), and the cold start figures."""
    harness = web.browser_harness()
    if harness is None:
        return {"cold_start_s": None, "cold_start_ratio": None, "browser": "no Chromium or playwright"}
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = harness.launch_chromium(playwright)
        try:
            for case in cases:
                try:
                    results[case.name].update(web.page_in_fresh_server(chromium, case.path, case.browser_action,
                                                                       timeout_s))
                except Exception as err:  # noqa: BLE001 - reported per page
                    results[case.name]["browser_error"] = f"{type(err).__name__}: {str(err)[:300]}"
            cold = web.cold_start(chromium, starts) if starts > 0 else {}
        finally:
            chromium.close()
    return cold


# -- SAIA on a row no cache holds ------------------------------------------------------------------------------
def acquisition_row_s(row_index: int, model_name: str = "boston-hhvaem") -> dict[str, float]:
    """Seconds of SAIA over all D + 1 steps of test row ``row_index`` with the Acquisition page's
    defaults (200 draws, seed 0), called directly so that no cache can answer:
    ``acquisition_row_s`` for the MI strategy alone (``acquire_row``), ``acquisition_row_all_s`` for
    every strategy, as the page computes them (``acquire_row_all`` where vizvae has it, else one
    strategy after the other)."""
    from vizvae.checkpoint import checkpoint_dataset, load_checkpoint, resolve_checkpoint
    from vizvae.evaluation import acquisition_view as view
    from vizvae.inference.acquisition import STRATEGIES

    checkpoint = load_checkpoint(resolve_checkpoint(model_name), device="cpu")
    dataset = checkpoint_dataset(checkpoint.config)
    row = view.acquisition_row(dataset.x_test[row_index].astype(np.float32), float(dataset.y_test[row_index]),
                               dataset.schema, dataset.target, f"test row {row_index}")
    started = time.perf_counter()
    view.acquire_row(checkpoint.model, row, "mi", 200, 0)
    one = time.perf_counter() - started
    every = vars(view).get("acquire_row_all")
    started = time.perf_counter()
    if every is not None:
        every(checkpoint.model, row, 200, 0)
    else:
        for strategy in STRATEGIES:
            view.acquire_row(checkpoint.model, row, strategy, 200, 0)
    return {"acquisition_row_s": round(one, 2), "acquisition_row_all_s": round(time.perf_counter() - started, 2)}


# -- report -----------------------------------------------------------------------------------------------------
def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:,.0f}"


def table(results: dict[str, dict]) -> str:
    lines = [f"{'page':24s} {'model':22s} {'first ms':>10s} {'interact ms':>12s} {'browser first':>14s} "
             f"{'browser inter.':>15s}  interaction"]
    for name, r in results.items():
        lines.append(f"{name:24s} {str(r.get('model') or '-'):22s} {_ms(r.get('first_ms')):>10s} "
                     f"{_ms(r.get('interaction_ms')):>12s} {_ms(r.get('browser_first_ms')):>14s} "
                     f"{_ms(r.get('browser_interaction_ms')):>15s}  {r['interaction']}")
        for key in ("error", "shown_errors", "browser_error"):
            if key in r:
                lines.append(f"{'':24s} {key}: {r[key]}")
    return "\n".join(lines)


def slowest_interaction(results: dict[str, dict]) -> float | None:
    times = [r[k] for r in results.values() for k in ("interaction_ms", "browser_interaction_ms")
             if isinstance(r.get(k), (int, float)) and math.isfinite(r[k])]
    return max(times) if times else None


def _flag(options: dict[str, Any], key: str, default: bool) -> bool:
    return str(options.get(key, "1" if default else "0")).strip().lower() not in ("0", "false", "no", "off")


def apptest_all(cases: list[PageCase], timeout_s: float, profile: bool) -> tuple[dict, dict, list[str]]:
    """AppTest times of every case, then a profile of each slow one: every run starts with Streamlit's
    caches emptied and the disk caches as shipped (what a run wrote under assets/ is undone after it).
    Returns the times, the profiles and what was undone."""
    results: dict[str, dict] = {}
    profiles: dict[str, list[str]] = {}
    undone: list[str] = []
    warm_imports(cases, timeout_s)
    for case in cases:
        with new_user() as case_undone:
            results[case.name] = apptest_case(case, timeout_s)
        undone += case_undone
        r = results[case.name]
        print(f"#   {case.name}: {_ms(r.get('first_ms'))} ms, then {_ms(r.get('interaction_ms'))} ms",
              file=sys.stderr, flush=True)
        if profile and max(r.get("first_ms", 0), r.get("interaction_ms", 0)) > SLOW_MS:
            with new_user() as case_undone:
                profiles[case.name] = profile_case(case, timeout_s)
            undone += case_undone
    return results, profiles, undone


def run(options: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # AppTest outside a server: a warning per cache
    cases = chosen_cases(options.get("pages"))
    timeout_s = float(options.get("timeout", 900))
    results, profiles, restored = apptest_all(cases, timeout_s, _flag(options, "profile", True))
    cold: dict[str, Any] = {}
    if _flag(options, "browser", True):
        cold = browser_cases(cases, results, timeout_s, int(options.get("starts", 3)))
    summary: dict[str, Any] = {"pages": results, "acquisition_row_s": None, "acquisition_step_ms": None,
                               "cold_start_s": None, "cold_start_ratio": None}  # None: not measured in this run
    if any(c.page == "acquisition" for c in cases):
        summary.update(acquisition_row_s(int(options.get("acq_row", 5))))
        summary["acquisition_step_ms"] = results["acquisition"].get("interaction_ms")
    summary["slowest_interaction_ms"] = slowest_interaction(results)
    summary.update(cold)
    summary["profiles"] = profiles
    summary["assets_undone"] = restored
    print(table(results), file=sys.stderr)
    for name, lines in profiles.items():
        print(f"\nprofile of {name} (cumulative, top {PROFILE_LINES}):\n" + "\n".join(lines), file=sys.stderr)
    return summary
