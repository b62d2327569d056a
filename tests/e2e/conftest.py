"""Browser tests: Playwright drives Debian's Chromium against a real ``streamlit run``.

Without Chromium the tests skip and say how to install it, except under ``CI=true``: there a
missing Chromium fails every browser test, so CI cannot stay green without running them
(``.ci/run`` installs it, and stops when it cannot). Screenshots go to ``tests/e2e/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import os

import pytest

from tests.e2e.harness import (  # noqa: F401  (re-exported for the test modules)
    CHROMIUM, INSTALL_HINT, ROOT, SCREENSHOTS, drag, exceptions_on_screen, free_port, launch_chromium, screenshot,
    start_streamlit, stop_streamlit, wait_for_app, wait_until_serving,
)

pytestmark = pytest.mark.e2e


def running_in_ci(environ=os.environ) -> bool:
    return environ.get("CI", "").strip().lower() in ("true", "1")


def require_chromium(chromium: str | None = CHROMIUM, environ=os.environ) -> None:
    """Skip a browser test when Chromium is missing, or fail it when running in CI."""
    if chromium is not None:
        return
    if running_in_ci(environ):
        pytest.fail(f"CI=true but Chromium is missing, so the browser tests cannot run. {INSTALL_HINT}",
                    pytrace=False)
    pytest.skip(INSTALL_HINT)


@pytest.fixture(scope="session")
def app_url():
    require_chromium()
    port = free_port()
    process = start_streamlit(port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process)
        yield url
    finally:
        stop_streamlit(process)


@pytest.fixture(scope="session")
def browser():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


