"""A shared server under load: ``python -m vizvae bench --only load [--json] [-o KEY=VALUE ...]``.

One real ``streamlit run app.py`` on loopback (a free port on 127.0.0.1, a private upload folder and
user cache, paths closed as on a shared server) and one Chromium (``browser.py``'s harness). In it,
``sessions`` browser contexts, each its own Streamlit session, drive the heavy pages at once, each
through deep links carrying its own test row (``ROW_BASE`` + its number), session i starting at
page i mod 3 so that all three are at work at once:

* Posterior on an HMC model: the row is not the one whose chains are shipped, so HMC runs;
* Inpainting on the same model: the Run button (its default methods and settings);
* Latent space with the UMAP projection (read from the model's shipped projection) and the row selected.

Meanwhile a thread asks ``/_stcore/health`` every ``HEALTH_EVERY_S`` and times the answer; every
``PAINT_EVERY_S`` (at most ``PROBES_AT_ONCE`` in flight) a fresh context opens a light page (the
Model page) and times its first paint in the browser's clock: from navigation start until the main
block holds drawn elements, the script state (``browser.STATE_SAMPLER``) is notRunning and has
stayed so for ``browser.QUIET_MS``; and a thread samples the server's resident memory (its process
and children: psutil, else /proc).

Each session reads its own row back from the page's widget and the URL as soon as the widget is
drawn and again when the page has finished; a value of another session's there is a leak of state
between sessions. The load phase lasts until every session is done, at most ``timeout`` seconds: a
session still working then is counted as unfinished, not waited on. The server and the browser
are always stopped, and what the server wrote under assets/ undone.

Keys: ``load_sessions``, ``load_sessions_done`` (finished every page), ``load_sessions_isolated``
(every read-back showed the session's own row; None when none was read), ``load_isolation_checks``,
``load_isolation_leaks``, ``load_health_p50_ms``, ``load_health_p95_ms``, ``load_health_count``,
``load_health_failures`` (no answer within 10 s), ``load_first_paint_p50_ms``,
``load_first_paint_p95_ms``, ``load_first_paint_count``, ``load_first_paint_unanswered`` (probes
cut by the end of the phase: how long they had waited, what their page showed),
``load_first_paint_idle_ms`` (the same page on the idle server, before the load),
``load_peak_rss_mb``, ``load_server_up`` (health answers after the load phase), ``load_errors``
(exceptions drawn on a page, or a session's failure), ``load_assets_undone``. None: not measured.

Options: ``sessions=8``, ``timeout=120`` (s of load), ``model=mnist-hhvae`` (Posterior and
Inpainting), ``latent_model=mnist-betavae-16d-b4``, ``rounds=1`` (passes over the three pages).
"""

from __future__ import annotations

import asyncio
import math
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench import browser as web
from vizvae.checkpoint import REPO_ROOT

HEALTH_EVERY_S = 0.5
PAINT_EVERY_S = 2.0
PROBES_AT_ONCE = 3  # first-paint probes in flight together: a slow answer does not stop the sampling
RSS_EVERY_S = 0.2
POLL_S = 0.25  # how often a page is asked whether it has settled: the times come from the page's own clock
ROW_BASE = 101  # session i works on test row ROW_BASE + i (row 0's posterior is shipped: no HMC would run)
LIGHT_PAGE = "/?model=mnist-vae-2d"  # the Model page: stored previews, no weights loaded
VIEWPORT = {"width": 1400, "height": 1000}
# browser.SETTLED, without its demand to have seen a "running" state: the first run of a light page
# can start and end between two 10 ms samples (the DOM then never says "running"), and a new document
# has nothing drawn in its main block before its first run.
PAINTED = """
([quiet]) => {
  const log = window.__scriptStates || [];
  if (!log.length) return null;
  const [when, state] = log[log.length - 1];
  const drawn = document.querySelectorAll('[data-testid="stMain"] [data-testid="stElementContainer"]').length > 0;
  const working = document.querySelector('[class*="_progress"] [data-testid="stProgress"]') !== null;
  if (state === 'notRunning' && drawn && !working && performance.now() - when >= quiet) return when;
  return null;
}
"""
PAGE_STATE = """
() => {
  const log = window.__scriptStates || [];
  return [log.length ? log[log.length - 1][1] : null,
          document.querySelectorAll('[data-testid="stMain"] [data-testid="stElementContainer"]').length];
}
"""
# what each page shows of the session's row: its widget, and the URL parameter that set it
READ_BACK = {"posterior": (".st-key-posterior_image input", "image"),
             "inpainting": (".st-key-inpaint_image input", "image"),
             "latent_space": (".st-key-latent_points input", "points")}


# -- figures ----------------------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 1)


class HealthPoller(threading.Thread):
    """Asks ``url``/_stcore/health every ``every`` s until stopped; latencies of the 200 answers in ms."""

    def __init__(self, url: str, every: float = HEALTH_EVERY_S):
        super().__init__(name="vizvae-load-health", daemon=True)
        self.url, self.every = url + "/_stcore/health", every
        self.latencies: list[float] = []
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    response.read()
                    ok = response.status == 200
            except OSError:
                ok = False
            elapsed = time.perf_counter() - started
            if ok:
                self.latencies.append(1000 * elapsed)
            else:
                self.failures += 1
            self.stop.wait(max(0.0, self.every - elapsed))


def _proc_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    return tree


def proc_kb(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` field in kB (VmHWM, VmRSS, ...); 0 when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants: psutil where installed, else /proc."""
    try:
        import psutil
    except ImportError:
        return 1024 * sum(proc_kb(p, "VmRSS") for p in _proc_tree(pid))
    try:
        process = psutil.Process(pid)
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                continue
        return total
    except psutil.Error:
        return 0


class RssSampler(threading.Thread):
    """The peak of ``tree_rss_bytes(pid)`` sampled every ``every`` s, and of the process's own
    high-water mark (VmHWM: a peak between two samples)."""

    def __init__(self, pid: int, every: float = RSS_EVERY_S):
        super().__init__(name="vizvae-load-rss", daemon=True)
        self.pid, self.every = pid, every
        self.peak = 0
        self.stop = threading.Event()

    def sample(self) -> None:
        self.peak = max(self.peak, tree_rss_bytes(self.pid), 1024 * proc_kb(self.pid, "VmHWM"))

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.every)
        self.sample()

    @property
    def peak_mb(self) -> float | None:
        return round(self.peak / 2**20, 1) if self.peak else None


# -- the browser ------------------------------------------------------------------------------------------------
class Record:
    """What the sessions and the probes saw."""

    def __init__(self):
        self.done = 0
        self.checks = 0
        self.leaks: list[str] = []
        self.errors: list[str] = []
        self.paints: list[float] = []
        self.unanswered: list[str] = []  # first-paint probes cut by the end of the phase
        self.idle_paint: float | None = None


async def open_context(browser):
    """A fresh context (its own cookies and storage: a new Streamlit session) with the state sampler."""
    context = await browser.new_context(viewport=VIEWPORT)
    await context.add_init_script(web.STATE_SAMPLER)
    return context, await context.new_page()


def _ms_left(deadline: float) -> float:
    return max(1.0, 1000 * (deadline - time.monotonic()))


async def wait_js(page, script: str, arg: list, deadline: float) -> float:
    """Poll ``script`` (``PAINTED`` or ``browser.SETTLED``) until it returns a time (browser ms)."""
    from playwright.async_api import Error as PlaywrightError

    while True:
        try:
            when = await page.evaluate(script, arg)
        except PlaywrightError:  # the document is still being replaced by the navigation
            when = None
        if when is not None:
            return float(when)
        if time.monotonic() > deadline:
            raise TimeoutError("the load phase ended first")
        await asyncio.sleep(POLL_S)


async def _shown_errors(page, where: str, record: Record) -> None:
    for text in await page.locator('[data-testid="stException"]').all_inner_texts():
        record.errors.append(f"{where}: {(text.strip().splitlines() or [''])[0][:200]}")


async def first_paint(browser, url: str, deadline: float, record: Record) -> float:
    """ms from navigation start to the first settled drawing of ``url`` in a fresh context. One cut
    by the deadline is noted in ``record.unanswered`` with what its page showed, and raises."""
    context, page = await open_context(browser)
    started = time.monotonic()
    try:
        try:
            await page.goto(url, wait_until="commit", timeout=_ms_left(deadline))
            when = await wait_js(page, PAINTED, [web.QUIET_MS], deadline)
        except Exception:
            if time.monotonic() >= deadline:
                record.unanswered.append(f"after {time.monotonic() - started:.0f} s: {await _page_state(page)}")
            raise
        await _shown_errors(page, "first paint", record)
        return when
    finally:
        await context.close()


async def _page_state(page) -> str:
    """What a page that has not painted shows: its script state and how much is drawn."""
    try:
        state, drawn = await asyncio.wait_for(page.evaluate(PAGE_STATE), 5)
    except Exception:  # noqa: BLE001 - a page too busy to answer, or not there yet
        return "the page did not answer"
    return f"script state {state}, {drawn} elements drawn"


async def probe(browser, url: str, deadline: float, record: Record) -> None:
    started = time.monotonic()
    try:
        record.paints.append(await first_paint(browser, url, deadline, record))
        print(f"#   first paint {record.paints[-1]:,.0f} ms (probe {time.monotonic() - started:.1f} s)",
              file=sys.stderr, flush=True)
    except Exception as err:  # noqa: BLE001 - a probe cut by the end of the phase is unanswered, not an error
        if time.monotonic() < deadline:
            record.errors.append(f"first paint: {type(err).__name__}: {str(err)[:200]}")


async def paint_probes(browser, url: str, deadline: float, record: Record) -> None:
    """A fresh context on the light page every ``PAINT_EVERY_S``, at most ``PROBES_AT_ONCE`` at a
    time, none started in the phase's last ``PAINT_EVERY_S``."""
    running: set[asyncio.Task] = set()
    try:
        while time.monotonic() < deadline - PAINT_EVERY_S:
            running = {task for task in running if not task.done()}
            if len(running) < PROBES_AT_ONCE:
                running.add(asyncio.create_task(probe(browser, url, deadline, record)))
            await asyncio.sleep(PAINT_EVERY_S)
        if running:
            await asyncio.wait(running)
    finally:
        for task in running:
            task.cancel()


def session_steps(row: int, model: str, latent_model: str) -> list[tuple[str, str, bool]]:
    """(page, deep link, press Run) of one pass over the heavy pages, on test row ``row``."""
    return [("posterior", "/posterior?" + urlencode({"model": model, "image": row}), False),
            ("inpainting", "/inpainting?" + urlencode({"model": model, "image": row}), True),
            ("latent_space", "/latent_space?" + urlencode({"model": latent_model, "method": "umap", "points": row}),
             False)]


async def read_back(page, name: str, row: int, where: str, deadline: float, record: Record) -> None:
    """Does the page show this session's row, in its widget and its URL?"""
    selector, param = READ_BACK[name]
    widget = page.locator(selector).first
    await widget.wait_for(state="attached", timeout=_ms_left(deadline))
    shown = (await widget.input_value()).strip()
    in_url = await page.evaluate("p => new URL(location.href).searchParams.get(p)", param)
    record.checks += 1
    if shown != str(row) or in_url not in (None, str(row)):
        record.leaks.append(f"{where}: row {row} expected, the widget shows {shown!r}, the URL {in_url!r}")


async def session(browser, base_url: str, index: int, options: dict[str, Any], deadline: float,
                  record: Record) -> None:
    """One visitor: ``rounds`` passes over the heavy pages on its own row, in its own context."""
    row = ROW_BASE + index
    one_pass = session_steps(row, options["model"], options["latent_model"])
    one_pass = one_pass[index % 3:] + one_pass[:index % 3]  # staggered: all three pages are at work at once
    steps = one_pass * options["rounds"]
    context, page = await open_context(browser)
    try:
        for name, path, press_run in steps:
            where = f"session {index} {name}"
            await page.goto(base_url + path, wait_until="commit", timeout=_ms_left(deadline))
            await read_back(page, name, row, where, deadline, record)  # as soon as the widget is drawn
            await wait_js(page, web.SETTLED, [0.0, web.QUIET_MS], deadline)
            await _shown_errors(page, where, record)
            if press_run:
                before = await page.evaluate("performance.now()")
                await page.locator(".st-key-inpaint_run button").first.click(timeout=_ms_left(deadline))
                await wait_js(page, web.SETTLED, [before, web.QUIET_MS], deadline)
                await _shown_errors(page, where + " (Run)", record)
            await read_back(page, name, row, where, deadline, record)  # and once its work is drawn
            print(f"#   {where} done at {options['timeout'] - (deadline - time.monotonic()):.0f} s", file=sys.stderr,
                  flush=True)
        record.done += 1
    except Exception as err:  # noqa: BLE001 - cut by the end of the phase: unfinished; before it: an error
        if time.monotonic() < deadline:
            record.errors.append(f"session {index}: {type(err).__name__}: {str(err).strip()[:200]}")
    finally:
        await context.close()


async def drive(harness, url: str, health: HealthPoller, options: dict[str, Any], record: Record) -> None:
    """The idle first paint, then the load phase: the sessions and the probes at once, until every
    session is done or for at most ``options["timeout"]`` s; the browser is closed on the way out."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await harness.launch_chromium(playwright)
        try:
            await first_paint(chromium, url + LIGHT_PAGE, time.monotonic() + 120, record)  # the app is open
            record.idle_paint = await first_paint(chromium, url + LIGHT_PAGE, time.monotonic() + 60, record)
            print(f"#   idle first paint {record.idle_paint:,.0f} ms; {options['sessions']} sessions for at most "
                  f"{options['timeout']:.0f} s", file=sys.stderr, flush=True)
            deadline = time.monotonic() + options["timeout"]
            health.start()
            sessions = [asyncio.create_task(session(chromium, url, i, options, deadline, record))
                        for i in range(options["sessions"])]
            probes = asyncio.create_task(paint_probes(chromium, url + LIGHT_PAGE, deadline, record))
            if sessions:  # the phase ends when every session is done, or at the deadline
                _, pending = await asyncio.wait(sessions, timeout=max(0.0, deadline - time.monotonic()) + 5)
            else:
                _, pending = await asyncio.wait([probes], timeout=max(0.0, deadline - time.monotonic()) + 5)
            pending = set(pending) | ({probes} if not probes.done() else set())
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=10)
        finally:
            health.stop.set()
            await chromium.close()


# -- the benchmark ----------------------------------------------------------------------------------------------
def health_answers(url: str, timeout: float = 10.0) -> bool:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def _options(options: dict[str, Any]) -> dict[str, Any]:
    return {"sessions": int(options.get("sessions", 8)), "timeout": float(options.get("timeout", 120)),
            "model": str(options.get("model", "mnist-hhvae")),
            "latent_model": str(options.get("latent_model", "mnist-betavae-16d-b4")),
            "rounds": max(1, int(options.get("rounds", 1)))}


def summary(record: Record, health: HealthPoller, rss: RssSampler, sessions: int) -> dict[str, Any]:
    return {
        "load_sessions": sessions, "load_sessions_done": record.done,
        "load_sessions_isolated": (not record.leaks) if record.checks else None,
        "load_isolation_checks": record.checks, "load_isolation_leaks": record.leaks[:20],
        "load_health_p50_ms": percentile(health.latencies, 50), "load_health_p95_ms": percentile(health.latencies, 95),
        "load_health_count": len(health.latencies), "load_health_failures": health.failures,
        "load_first_paint_p50_ms": percentile(record.paints, 50),
        "load_first_paint_p95_ms": percentile(record.paints, 95),
        "load_first_paint_count": len(record.paints), "load_first_paint_unanswered": record.unanswered,
        "load_first_paint_idle_ms": None if record.idle_paint is None else round(record.idle_paint, 1),
        "load_peak_rss_mb": rss.peak_mb, "load_errors": record.errors[:50],
    }


def run(options: dict[str, Any]) -> dict[str, Any]:
    settings = _options(options)
    harness = web.browser_harness()
    if harness is None:
        return {"load_sessions": settings["sessions"], "load_sessions_done": None, "load_sessions_isolated": None,
                "load_health_p50_ms": None, "load_health_p95_ms": None, "load_first_paint_p50_ms": None,
                "load_first_paint_p95_ms": None, "load_first_paint_count": None, "load_peak_rss_mb": None,
                "load_server_up": None, "load_errors": ["no Chromium or playwright"]}
    record = Record()
    with tempfile.TemporaryDirectory(prefix="vizvae-load-uploads-") as uploads:
        server = web.Server(REPO_ROOT, harness.free_port(), env={"VIZVAE_UPLOAD_DIR": uploads, "VIZVAE_OPEN_PATHS": "0"})
        health, rss = HealthPoller(server.url), RssSampler(server.process.pid)
        rss.start()
        serving = False
        try:
            server.wait_serving()
            serving = True
            asyncio.run(drive(harness, server.url, health, settings, record))
        except Exception as err:  # noqa: BLE001 - reported with the figures measured so far
            record.errors.append(f"load: {type(err).__name__}: {str(err).strip()[:300]}")
        finally:
            server_up = (server.process.poll() is None and health_answers(server.url)) if serving else None
            health.stop.set()
            rss.stop.set()
            if health.is_alive():
                health.join(15)
            rss.join(5)
            undone = server.close()
    result = summary(record, health, rss, settings["sessions"])
    result["load_server_up"] = server_up
    result["load_assets_undone"] = undone
    return result
