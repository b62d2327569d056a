"""The Acquisition page in Chromium: it renders a run on a shipped mixed model, and each press of Step redraws
both the reward chart and the predictive distribution of y."""

import pytest

from tests.e2e.conftest import exceptions_on_screen, screenshot, wait_for_app

pytestmark = pytest.mark.e2e

REWARDS = ".st-key-acq_rewards"
TARGET = ".st-key-acq_target"


def drawn(page, selector: str) -> tuple[str, str]:
    """What plotly drew for a chart: (its title, the outlines and colours of its bars and lines)."""
    title, shapes = page.eval_on_selector(
        selector, "el => [(el.querySelector('.gtitle') || {}).textContent || '', "
                  "Array.from(el.querySelectorAll('.barlayer path, .scatterlayer path'))"
                  ".map(p => p.getAttribute('d') + ' ' + p.style.fill).join(';')]")
    assert shapes, f"nothing drawn in {selector}"
    return title, shapes


def test_stepping_redraws_the_rewards_and_the_predictive_distribution(app_url, page):
    page.goto(f"{app_url}/acquisition?model=boston-vaem&samples=50")
    page.get_by_role("heading", name="Across the test set (Fig. 5.5)").wait_for(timeout=120_000)
    wait_for_app(page)
    assert exceptions_on_screen(page) == []
    for chart in (REWARDS, TARGET, ".st-key-acq_imputed", ".st-key-acq_compare", ".st-key-acq_dataset_curves"):
        page.locator(f"{chart} .main-svg").first.wait_for()
    before = (drawn(page, REWARDS), drawn(page, TARGET))
    assert page.get_by_text("Before the first step").count() >= 1 and "after 0 acquired" in before[1][0]
    screenshot(page, "acquisition")
    seen = [before]
    for step in (1, 2, 3):
        page.locator(".st-key-acq_forward button").click()
        page.wait_for_function(f"() => new URL(location.href).searchParams.get('t') === '{step}'", timeout=60_000)
        page.wait_for_function(
            "([sel, text]) => { const t = document.querySelector(sel + ' .gtitle'); "
            "return t && t.textContent.includes(text); }", arg=[TARGET, f"after {step} acquired"], timeout=60_000)
        wait_for_app(page)
        assert exceptions_on_screen(page) == []
        now = (drawn(page, REWARDS), drawn(page, TARGET))
        assert page.get_by_text(f"Step {step}: acquired").count() >= 1
        # the drawings themselves differ, not only the titles
        assert now[0][1] != seen[-1][0][1], f"the reward bars did not change at step {step}"
        assert now[1][1] != seen[-1][1][1], f"the distribution of y did not change at step {step}"
        seen.append(now)
    assert page.get_by_text("3 of 13").count() >= 1
    screenshot(page, "acquisition-step3")
