"""Browser tests: Playwright drives Debian's Chromium against a real ``streamlit run``.

Without Chromium the tests skip and say how to install it; ``.ci/run`` installs it, so in CI
they always run. Screenshots go to ``tests/e2e/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.harness import (  # noqa: F401  (re-exported for the test modules)
    CHROMIUM, INSTALL_HINT, ROOT, SCREENSHOTS, exceptions_on_screen, free_port, launch_chromium, screenshot,
    start_streamlit, wait_for_app, wait_until_serving,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def app_url():
    if CHROMIUM is None:
        pytest.skip(INSTALL_HINT)
    port = free_port()
    process = start_streamlit(port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None:
        pytest.skip(INSTALL_HINT)
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


