"""Pages as a browser meets them: a real ``streamlit run`` driven by Playwright and Chromium.

Times come from the page itself: an init script samples the app's ``data-test-script-state``
(Streamlit's own "running" / "notRunning" flag on ``stApp``) every 10 ms, so a script run is timed
from the browser's clock and a rerun shorter than a polling round trip is still seen. A run is
over when the app has been "notRunning" for ``QUIET_MS`` (reruns chain: a URL update, st.rerun) and
no background job's progress bar is left on the page (the result is drawn, not a promise of it).

Needs the repository's browser harness (``tests/e2e/harness.py``: Chromium's path and launch
arguments) and playwright; ``browser_harness()`` is None without them.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable

from bench.leftovers import bootstrap_code, undo_logged
from vizvae.checkpoint import REPO_ROOT

QUIET_MS = 750
STATE_SAMPLER = """
(() => {
  const log = window.__scriptStates = [];
  let last = null;
  setInterval(() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const state = app ? app.getAttribute('data-test-script-state') : null;
    if (state !== last) { log.push([performance.now(), state]); last = state; }
  }, 10);
})();
"""
SETTLED = """
([after, quiet]) => {
  const log = window.__scriptStates || [];
  if (!log.length) return null;
  const [when, state] = log[log.length - 1];
  const ran = log.some(([t, s]) => t >= after && s === 'running');
  const drawn = document.querySelectorAll('[data-testid="stMain"] [data-testid="stElementContainer"]').length > 0;
  // a background job's bar: pages/_common.py draws it in a container keyed <job>_progress
  const working = document.querySelector('[class*="_progress"] [data-testid="stProgress"]') !== null;
  if (state === 'notRunning' && ran && drawn && !working && performance.now() - when >= quiet) return when;
  return null;
}
"""
BARE_APP = {
    "app.py": "import streamlit as st\n\n"
              "st.navigation([st.Page('first.py', default=True), st.Page('second.py')]).run()\n",
    "first.py": "import streamlit as st\n\nst.title('First page')\nst.write('A bare Streamlit page.')\n",
    "second.py": "import streamlit as st\n\nst.title('Second page')\n",
}


def browser_harness():
    """The repository's browser-test harness (``tests/e2e/harness.py``, with playwright), or None
    where vizvae runs without its repository, playwright or Chromium."""
    try:
        from tests.e2e import harness
    except ImportError:
        return None
    return harness if harness.CHROMIUM is not None else None


class Server:
    """``streamlit run app.py`` in ``folder`` on a free port, recording what it writes under assets/
    so that ``close`` can undo it; ``env`` adds to (or overrides) its environment."""

    def __init__(self, folder: Path, port: int, env: dict[str, str] | None = None):
        self.folder, self.port = folder, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = Path(tempfile.mkstemp(prefix="vizvae-bench-writes-", suffix=".json")[1])
        self.log.unlink()
        argv = ["streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
                "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
                "--server.fileWatcherType", "none"]
        self.user_cache = tempfile.TemporaryDirectory(prefix="vizvae-bench-user-cache-")  # a first visitor's
        env = {**os.environ, "VIZVAE_CACHE_DIR": self.user_cache.name,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
               **(env or {})}
        self.stderr = tempfile.TemporaryFile(mode="w+")  # a pipe nobody reads would fill and stall the server
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-c", bootstrap_code(REPO_ROOT / "assets", self.log, argv)], cwd=folder, env=env,
            stdout=subprocess.DEVNULL, stderr=self.stderr, text=True)

    def wait_serving(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stderr.seek(0)
                raise RuntimeError(f"streamlit exited: {self.stderr.read()[-500:]}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"streamlit did not serve {self.url} within {timeout:.0f} s")

    def cpu_seconds(self) -> float | None:
        """CPU time the server process has used so far (Linux ``/proc``; None elsewhere)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def wait_idle(self, quiet_s: float = 1.0, busy_fraction: float = 0.05, timeout: float = 60.0) -> float | None:
        """Wait until the server has used under ``busy_fraction`` of a core for ``quiet_s`` (its
        background imports after the first page are done); returns the seconds waited (None: no
        ``/proc`` to read, or still busy at ``timeout``)."""
        start = time.monotonic()
        last = self.cpu_seconds()
        if last is None:
            return None
        while time.monotonic() - start < timeout:
            time.sleep(quiet_s)
            now = self.cpu_seconds()
            if now is None:
                return None
            if now - last < busy_fraction * quiet_s:
                return round(time.monotonic() - start, 2)
            last = now
        return None

    def close(self) -> list[str]:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        changed = undo_logged(REPO_ROOT / "assets", self.log)
        self.log.unlink(missing_ok=True)
        self.user_cache.cleanup()
        self.stderr.close()
        return changed


def settled_at(page, after_ms: float, timeout_s: float) -> float:
    """Wait until the app finished the runs started after ``after_ms`` (browser clock); returns when
    the last of them ended, in the browser's ms."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        when = page.evaluate(SETTLED, [after_ms, QUIET_MS])
        if when is not None:
            return float(when)
        page.wait_for_timeout(50)
    raise TimeoutError(f"the app did not finish a run within {timeout_s:.0f} s")


def new_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(STATE_SAMPLER)
    return context, context.new_page()


def time_page(browser, port: int, path: str, action: Callable | None, timeout_s: float) -> tuple[float, float | None]:
    """(first render ms, interaction ms) of ``path`` (``/page?query``) on the server at ``port``: the
    first from navigation start, the second from just before ``action(page)``."""
    context, page = new_page(browser)
    try:
        page.goto(f"http://127.0.0.1:{port}{path}", timeout=timeout_s * 1000)
        first = settled_at(page, 0.0, timeout_s)
        errors = page.locator('[data-testid="stException"]').all_inner_texts()
        if errors:
            raise RuntimeError(errors[0].strip().splitlines()[0][:300])
        if action is None:
            return first, None
        before = float(page.evaluate("performance.now()"))
        action(page)
        return first, settled_at(page, before, timeout_s) - before
    finally:
        context.close()


def page_in_fresh_server(browser, path: str, action: Callable | None, timeout_s: float) -> dict:
    """Time one page on a server started for it alone, after one visit to the app's first page in
    another session and until the server is idle (the app is open, as in the AppTest column: the
    imports it makes in the background after its first page are done; ``cold_start`` times the start
    itself): nothing of this page in Streamlit's caches. Then stop the server and undo its writes
    under assets/."""
    harness = browser_harness()
    server = Server(REPO_ROOT, harness.free_port())
    result: dict = {}
    try:
        server.wait_serving()
        time_page(browser, server.port, "/", None, timeout_s)  # the app is open ...
        waited = server.wait_idle()  # ... and idle: the imports it starts after its first page are done
        first, interaction = time_page(browser, server.port, path, action, timeout_s)
        result.update(browser_idle_wait_s=waited, browser_first_ms=round(first, 1),
                      browser_interaction_ms=None if interaction is None else round(interaction, 1))
    finally:
        undone = server.close()
    if undone:
        result["browser_assets_undone"] = undone
    return result


def _cold_start(browser, folder: Path) -> float:
    """Seconds from spawning ``streamlit run`` in ``folder`` to its first page drawn in Chromium."""
    server = Server(folder, browser_harness().free_port())
    try:
        server.wait_serving()
        context, page = new_page(browser)
        try:
            navigated = time.perf_counter()
            page.goto(server.url, timeout=120_000)
            drawn_ms = settled_at(page, 0.0, 120.0)
            return navigated - server.started + drawn_ms / 1000
        finally:
            context.close()
    finally:
        server.close()


def cold_start(browser, starts: int = 3) -> dict[str, float]:
    """vizvae's cold start against a bare two-page Streamlit app written to a temp folder, started
    in alternating order (A B B A ...) so that a drifting machine load hits both alike."""
    with tempfile.TemporaryDirectory(prefix="vizvae-bare-app-") as bare:
        for name, text in BARE_APP.items():
            (Path(bare) / name).write_text(text)
        _cold_start(browser, Path(bare))  # warm the OS file cache for streamlit itself
        app_s, bare_s = [], []
        for i in range(starts):
            order = [(REPO_ROOT, app_s), (Path(bare), bare_s)]
            for folder, times in (order if i % 2 == 0 else order[::-1]):
                times.append(_cold_start(browser, folder))
    ratios = [a / b for a, b in zip(app_s, bare_s)]
    return {"cold_start_s": round(statistics.median(app_s), 2),
            "cold_start_bare_s": round(statistics.median(bare_s), 2),
            "cold_start_ratio": round(statistics.median(ratios), 2)}


# -- actions: what a user does first on a page -------------------------------------------------------------
def click(key: str) -> Callable:
    return lambda page: page.locator(f".st-key-{key} button").first.click()


def toggle(key: str) -> Callable:
    return lambda page: page.locator(f".st-key-{key} label").first.click()


def nudge(key: str, arrow: str = "ArrowLeft") -> Callable:
    return lambda page: page.locator(f'.st-key-{key} input[type="range"]').first.press(arrow)


def step_up(key: str) -> Callable:
    """The + of a number input."""
    return lambda page: page.locator(f'.st-key-{key} [data-testid="stNumberInputStepUp"]').first.click()
