"""A visitor of a shared server, in the browser: probing paths, crafted links, uploads left behind.

* a closed server (``VIZVAE_OPEN_PATHS=0``, as the default is beyond loopback) answers every path
  that is not one of its models with one fixed message, whether it exists, is missing or is JSON,
  and shows no server path;
* a ``?model=`` holding markdown is shown as typed: no image fetched, no link drawn;
* a session's uploads are removed once its browser has gone.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    ROOT, exceptions_on_screen, free_port, start_streamlit, stop_streamlit, wait_for_app, wait_until_serving,
)
from vizvae.server import CLOSED_PATH_MESSAGE

pytestmark = pytest.mark.e2e

WEIGHTS_AND_CONFIG = [ROOT / "assets" / "models" / "mnist-vae-2d" / name for name in ("model.safetensors", "config.json")]
GONE_WITHIN_S = 90  # a bound for the wait, not a timing under test: the reaper looks every 2 s


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory):
    """A server closed to visitors' paths, with its uploads in a folder of this test's own."""
    from tests.e2e.conftest import require_chromium

    require_chromium()
    uploads = tmp_path_factory.mktemp("uploads")
    port = free_port()
    process = start_streamlit(port, env={"VIZVAE_OPEN_PATHS": "0", "VIZVAE_UPLOAD_DIR": str(uploads)})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process)
        yield url, uploads
    finally:
        stop_streamlit(process)


def error_texts(page) -> list[str]:
    return page.locator('[data-testid="stAlertContentError"] [data-testid="stMarkdownContainer"]').all_inner_texts()


def probes(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "settings.json").write_text(json.dumps({"secret": 1}))
    return {"existing": str(tmp_path), "missing": str(tmp_path / "missing"), "JSON": str(tmp_path / "settings.json"),
            "system": "/etc/passwd"}


def test_a_closed_server_answers_every_path_probe_with_the_same_text(closed_server, page, tmp_path):
    url, _ = closed_server
    seen = {}
    for what, path in probes(tmp_path).items():
        page.goto(f"{url}/?model={urllib.parse.quote(path, safe='')}")
        wait_for_app(page)
        seen[what] = error_texts(page)
        body = page.locator("body").inner_text()
        assert str(tmp_path) not in body and "/etc" not in body and "Traceback" not in body, what
        assert exceptions_on_screen(page) == []
    assert set(map(tuple, seen.values())) == {(CLOSED_PATH_MESSAGE,)}, seen
    # the path box: the same text again
    page.get_by_text("Open another checkpoint").click()
    for what, path in probes(tmp_path).items():
        box = page.get_by_placeholder("runs/vae2d")
        box.fill(path)
        box.press("Enter")
        page.get_by_role("button", name="Open folder").click()
        wait_for_app(page)
        assert error_texts(page) == [CLOSED_PATH_MESSAGE], what
        assert str(tmp_path) not in page.locator('[data-testid="stMain"]').inner_text()


def test_a_markdown_link_in_the_url_is_shown_as_text(app_url, page):
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    crafted = "![x](http://evil.invalid/x.png) [click](http://evil.invalid/login) www.evil.invalid me@evil.invalid"
    page.goto(f"{app_url}/?model={urllib.parse.quote(crafted, safe='')}")
    wait_for_app(page)
    (error,) = error_texts(page)
    assert error.replace("\u2060", "").startswith(crafted + ": neither a checkpoint folder nor a shipped model")
    assert page.locator('img[src*="evil"]').count() == 0
    assert page.locator('a[href*="evil"]').count() == 0  # neither the bracketed links nor the bare ones
    assert not [address for address in requested if "evil" in urllib.parse.urlsplit(address).netloc]


def test_a_sessions_uploads_are_removed_when_its_browser_goes(closed_server, browser):
    url, uploads = closed_server
    before = set(uploads.iterdir())
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    wait_for_app(page)
    page.get_by_text("Open another checkpoint").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files([str(f) for f in WEIGHTS_AND_CONFIG])
    deadline = time.monotonic() + GONE_WITHIN_S
    while not list(uploads.glob("vizvae-upload-*/0001/config.json")) and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    wait_for_app(page)
    assert error_texts(page) == []
    (session,) = set(uploads.iterdir()) - before
    assert session.name.startswith("vizvae-upload-") and (session / "0001" / "config.json").is_file()
    assert "model=" not in page.url  # the private folder is not put in the URL
    context.close()
    deadline = time.monotonic() + GONE_WITHIN_S
    while session.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not session.exists(), "the session's upload folder outlived its browser"


def test_a_decompression_bomb_upload_shows_the_limit_not_a_traceback(closed_server, page, tmp_path):
    """A 30000 × 30000 PNG of under 1 MB (900 MB decoded) on the Inpainting page: refused from its
    header with the pixel limit, no traceback, no server path, and the page stays usable."""
    from tests.data.bombs import png_bomb

    url, _ = closed_server
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb())
    page.goto(f"{url}/inpainting?model=mnist-pvae&source=upload&methods=encoder")
    wait_for_app(page)
    page.locator('[data-testid="stMain"] [data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(bomb))
    page.locator('[data-testid="stAlertContentError"]').first.wait_for()
    wait_for_app(page)
    (error,) = error_texts(page)
    assert error.startswith("bomb.png could not be used: the image declares 900,000,000 pixels, over the limit of "
                            "25,000,000 pixels (VIZVAE_MAX_IMAGE_PIXELS)"), error
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "DecompressionBomb" not in body and str(ROOT) not in body
    assert str(tmp_path) not in body and exceptions_on_screen(page) == []
    page.get_by_text("Test image", exact=True).click()  # the page goes on: back to a test image
    wait_for_app(page)
    assert error_texts(page) == [] and exceptions_on_screen(page) == []
