"""The disentanglement page in Chromium: it renders without exceptions and its GIF export
downloads an animated GIF."""

from pathlib import Path

from tests.e2e.conftest import exceptions_on_screen, screenshot, wait_for_app


def test_disentanglement_page_renders_and_exports_a_gif(app_url, page):
    # Open the app once first: until some session has run app.py (and so st.navigation), a
    # server started beside a `pages/` folder serves /disentanglement as a bare MPA-v1 page
    # (no sidebar picker, no wide layout); streamlit/streamlit#10276 describes the quirk.
    page.goto(app_url)
    wait_for_app(page)
    page.goto(f"{app_url}/disentanglement")
    wait_for_app(page)
    button = page.locator('[data-testid="stDownloadButton"]').filter(has_text="animated GIF").locator("button")
    button.wait_for()  # the first run loads three models: make sure it got this far...
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
    wait_for_app(page)  # ...and finished
    assert exceptions_on_screen(page) == []
    assert page.get_by_role("heading", name="Disentanglement").count() >= 1
    assert "Disentanglement" in page.locator('.st-key-app_pages').inner_text()  # registered in app.py
    screenshot(page, "disentanglement")
    with page.expect_download() as download:
        button.click()
    path = download.value.path()
    assert download.value.suggested_filename.endswith("-traversal.gif")
    data = Path(path).read_bytes()
    assert data[:4] == b"GIF8" and len(data) > 1000
