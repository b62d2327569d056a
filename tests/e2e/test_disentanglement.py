"""The disentanglement page in Chromium: it renders without exceptions and its GIF export
downloads an animated GIF."""

from pathlib import Path

from tests.e2e.conftest import exceptions_on_screen, screenshot, wait_for_app


def test_disentanglement_page_renders_and_exports_a_gif(app_url, page):
    page.goto(f"{app_url}/disentanglement")
    wait_for_app(page)
    assert exceptions_on_screen(page) == []
    assert page.get_by_role("heading", name="Disentanglement").count() >= 1
    screenshot(page, "disentanglement")
    button = page.locator('[data-testid="stDownloadButton"]').filter(has_text="animated GIF").locator("button")
    with page.expect_download() as download:
        button.click()
    path = download.value.path()
    assert download.value.suggested_filename.endswith("-traversal.gif")
    data = Path(path).read_bytes()
    assert data[:4] == b"GIF8" and len(data) > 1000
