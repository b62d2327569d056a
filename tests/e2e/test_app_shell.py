"""The app as a user meets it: every page loads, and choosing a model, moving a traversal slider
and selecting a point each change what is drawn."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.e2e.conftest import exceptions_on_screen, screenshot, wait_for_app

pytestmark = pytest.mark.e2e


def drawn(page) -> str:
    """A fingerprint of what is on screen: every image's source and every chart's SVG."""
    images = page.eval_on_selector_all('[data-testid="stMain"] img', "els => els.map(e => e.src)")
    charts = page.eval_on_selector_all('[data-testid="stMain"] .main-svg', "els => els.map(e => e.innerHTML.length)")
    return hashlib.sha1(repr((images, charts)).encode()).hexdigest()


def image_sources(page) -> list[str]:
    return page.eval_on_selector_all('[data-testid="stMain"] [data-testid="stImage"] img', "els => els.map(e => e.src)")


def test_every_page_loads_without_an_exception(page, app_url):
    page.goto(app_url)
    wait_for_app(page)
    from app import PAGES

    links = page.eval_on_selector_all('.st-key-app_pages a', "els => els.map(e => e.href)")
    assert len(links) == len(PAGES) == 9, "the sidebar lists the nine pages"
    for link in links:
        page.goto(link)
        wait_for_app(page)
        name = link.rstrip("/").rsplit("/", 1)[-1] or "model"
        screenshot(page, f"page-{name}")
        assert exceptions_on_screen(page) == [], f"{link} shows an exception"
        assert page.get_by_text("Page not found").count() == 0, f"{link} is not a page"
        assert page.locator('[data-testid="stMain"]').inner_text().strip(), f"{link} is blank"


def test_choosing_a_model_changes_the_model_page(page, app_url):
    page.goto(f"{app_url}/?model=mnist-vae-2d")  # the model page is the default, at the root
    wait_for_app(page)
    before_title = page.locator('[data-testid="stMain"] h1').first.inner_text()
    before = image_sources(page)
    page.locator('[data-testid="stSidebar"] [role="combobox"]').first.click()
    page.get_by_role("option", name="mnist-vae-16d").first.click()
    wait_for_app(page)
    screenshot(page, "model-16d")
    assert exceptions_on_screen(page) == []
    assert "mnist-vae-16d" in page.locator('[data-testid="stMain"]').inner_text()
    assert page.locator('[data-testid="stMain"] h1').first.inner_text() != before_title or image_sources(page) != before
    assert image_sources(page) != before


def test_moving_the_traversal_slider_changes_the_image(page, app_url):
    page.goto(f"{app_url}/latent_space?model=mnist-vae-16d&method=pca")
    wait_for_app(page)
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="− base").first
    slider.scroll_into_view_if_needed()
    before = image_sources(page)
    thumb = slider.locator('input[type="range"]')
    moved = "() => { const v = new URL(location.href).searchParams.get('offset'); return v !== null && Number(v) > 0; }"
    for attempt in range(3):  # a key pressed while a rerun is being applied can be dropped by the browser widget
        for _ in range(8):
            thumb.press("ArrowRight")
        try:
            page.wait_for_function(moved, timeout=20_000)
            break
        except Exception:
            if attempt == 2:
                raise
            wait_for_app(page)
    page.wait_for_function(  # the rerun that follows the URL may still be drawing
        "before => { const now = Array.from(document.querySelectorAll("
        "'[data-testid=\"stMain\"] [data-testid=\"stImage\"] img'), e => e.src);"
        " const was = JSON.parse(before); return now.length === was.length && JSON.stringify(now) !== JSON.stringify(was); }",
        arg=json.dumps(before), timeout=60_000)
    wait_for_app(page)
    screenshot(page, "latent-slider-moved")
    assert exceptions_on_screen(page) == []
    assert image_sources(page) != before


def test_selecting_a_point_shows_it(page, app_url):
    page.goto(f"{app_url}/latent_space?model=mnist-vae-2d&method=latent")
    wait_for_app(page)
    main = page.locator('[data-testid="stMain"]')
    assert "originals above reconstructions" not in main.inner_text()
    points = page.locator(".js-plotly-plot .scatterlayer .trace").first.locator("path.point")
    assert points.count() > 100
    before = drawn(page)
    points.nth(17).click(force=True)
    wait_for_app(page)
    screenshot(page, "latent-point-selected")
    assert exceptions_on_screen(page) == []
    assert "originals above reconstructions" in main.inner_text()
    assert drawn(page) != before
    assert "points=" in page.url  # the view is shareable by URL


def test_a_shared_link_opens_its_page_inside_the_app_on_a_fresh_server(browser):
    """The first visitor of a new server who opens /latent_space?... directly gets that page
    with the app's navigation and model picker, and the view the link describes."""
    from tests.e2e.harness import free_port, start_streamlit, wait_until_serving

    port = free_port()
    process = start_streamlit(port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/latent_space?model=mnist-vae-16d&method=pca&span=2.0")
        wait_for_app(page)
        screenshot(page, "fresh-server-shared-link")
        assert exceptions_on_screen(page) == []
        assert page.locator('[data-testid="stSidebar"] [role="combobox"]').count() == 1  # the app's picker
        assert page.locator('[data-testid="stMain"] h1').first.inner_text() == "Latent space"
        assert "mnist-vae-16d" in page.locator('[data-testid="stMain"]').inner_text()
        assert "span=2" in page.url
        page.close()
    finally:
        process.terminate()
        process.wait(10)
