"""The browser-test harness, shared by tests/e2e and the cold-start benchmark: start a real
``streamlit run`` on a free port, launch Debian's Chromium, wait for a script run to finish."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
INSTALL_HINT = "Debian's chromium is not installed: run `apt-get update && apt-get install -y chromium` (.ci/run does this)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
        "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop_streamlit(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def drag(page, selector: str, start: tuple[float, float], end: tuple[float, float]) -> float:
    """Drag the mouse across the element ``selector`` from ``start`` to ``end`` (fractions of its
    box), in steps as a hand does; returns the browser's clock just before the button is released."""
    area = page.locator(selector).bounding_box()
    x0, y0 = area["x"] + area["width"] * start[0], area["y"] + area["height"] * start[1]
    x1, y1 = area["x"] + area["width"] * end[0], area["y"] + area["height"] * end[1]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.mouse.move(x1, y1, steps=4)
    before = float(page.evaluate("performance.now()"))
    page.mouse.up()
    return before


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early: {process.stderr.read() if process.stderr else ''}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"streamlit did not serve {url} within {timeout} s")



def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def wait_for_app(page, timeout: float = 90.0) -> float:
    """Wait until the script run has finished: the main area holds something and the 'running'
    status widget has gone (checked three times, a beat apart, because reruns can chain).
    Returns the ``time.perf_counter()`` at which it was first seen settled."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    quiet, settled_at = 0, 0.0
    while time.monotonic() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0 or \
            page.locator('[data-testid="stSkeleton"]').count() > 0
        empty = page.locator('[data-testid="stMain"] [data-testid="stElementContainer"]').count() == 0
        if running or empty:
            quiet = 0
        else:
            settled_at = settled_at if quiet else time.perf_counter()
            quiet += 1
        if quiet >= 3:
            return settled_at
        page.wait_for_timeout(250)
    raise TimeoutError("the app was still running after %.0f s" % timeout)


def exceptions_on_screen(page) -> list[str]:
    return page.locator('[data-testid="stException"]').all_inner_texts()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
