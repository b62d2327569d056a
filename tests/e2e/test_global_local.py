"""The Global & local page in Chromium: it renders without exceptions, and choosing another
cluster redraws the Fig. 4.4 grid."""

import re

from tests.e2e.conftest import exceptions_on_screen, screenshot, wait_for_app


def grid_source(page) -> str:
    return page.locator(".st-key-gl_grid img").first.get_attribute("src")


def test_global_local_page_renders_and_the_cluster_changes_the_grid(app_url, page):
    page.goto(f"{app_url}/global_local?model=mnist-ugvae")
    wait_for_app(page)
    assert exceptions_on_screen(page) == []
    assert page.get_by_role("heading", name="Global & local latent spaces").count() >= 1
    before = grid_source(page)
    assert before
    screenshot(page, "global_local")
    page.locator(".st-key-gl_cluster").click()
    page.get_by_role("option", name=re.compile(r"^d = 3 ")).click()
    wait_for_app(page)
    assert exceptions_on_screen(page) == []
    page.wait_for_function(
        "before => { const img = document.querySelector('.st-key-gl_grid img'); return img && img.src && "
        "!img.src.endsWith(before); }", arg=before, timeout=30_000)
    assert grid_source(page) != before
    assert "cluster=3" in page.url
