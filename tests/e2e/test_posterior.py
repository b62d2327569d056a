"""The Posterior and HMC lab pages in Chromium: both render without exceptions, the chain stepper
moves the chains in the figure, and the lab trains live."""

import pytest

from tests.e2e.conftest import exceptions_on_screen, screenshot, wait_for_app

pytestmark = pytest.mark.e2e

PLANE = ".st-key-posterior_plane"


def plane_fingerprint(page) -> str:
    """The plane figure's legend and the positions of its chain markers, as drawn."""
    return page.eval_on_selector(
        PLANE, "el => el.querySelector('.legend').textContent + '|' + "
               "Array.from(el.querySelectorAll('.scatterlayer .trace:last-child path.point'))"
               ".map(p => p.getAttribute('transform')).join(';')")


def test_posterior_page_renders_and_the_chain_stepper_moves_the_chains(app_url, page):
    page.goto(f"{app_url}/posterior?model=mnist-vae-2d")
    # the first run samples, integrates and imports ArviZ: wait for the page's last section
    page.get_by_role("heading", name="Posterior gaps").wait_for(timeout=120_000)
    wait_for_app(page)
    assert exceptions_on_screen(page) == []
    assert page.get_by_role("heading", name="Posterior and chains").count() == 1
    page.locator(PLANE).scroll_into_view_if_needed()
    page.locator(f"{PLANE} .legend").wait_for()
    before = plane_fingerprint(page)
    assert "chains at t = 10" in before
    screenshot(page, "posterior")
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="chain stepper").first
    slider.scroll_into_view_if_needed()
    thumb = slider.locator('input[type="range"]')
    for _ in range(7):
        thumb.press("ArrowLeft")
    page.wait_for_function("() => new URL(location.href).searchParams.get('t') === '3'", timeout=30_000)
    wait_for_app(page)
    assert exceptions_on_screen(page) == []
    page.wait_for_function(
        "sel => { const l = document.querySelector(sel + ' .legend'); return l && l.textContent.includes('t = 3'); }",
        arg=PLANE, timeout=30_000)
    after = plane_fingerprint(page)
    assert "chains at t = 3" in after and after != before
    screenshot(page, "posterior-stepped")


def test_hmc_lab_renders_and_trains(app_url, page):
    page.goto(f"{app_url}/hmc_lab?iters=10")
    page.get_by_text("Press Train").wait_for(timeout=120_000)
    wait_for_app(page)
    assert exceptions_on_screen(page) == []
    assert page.get_by_role("heading", name="HMC lab").count() >= 1
    screenshot(page, "hmc-lab")
    page.get_by_role("button", name="Train").click()
    page.get_by_text("Final SKSD").first.wait_for(timeout=120_000)
    wait_for_app(page)
    assert exceptions_on_screen(page) == []
    assert page.locator(".st-key-lab_after .main-svg").count() >= 1
    assert page.locator(".st-key-lab_history .main-svg").count() >= 1
    screenshot(page, "hmc-lab-trained")
