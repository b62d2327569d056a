"""The Latent atlas in Chromium, on 10⁵ generated shapes: a box dragged on the canvas selects every
point inside it (counted here by brute force over the stored projection) and their posteriors are
drawn; hovering a point shows its thumbnail; the wheel zooms and the points in view are recounted."""

from __future__ import annotations

import urllib.parse

import numpy as np
import pytest

from tests.e2e.conftest import (
    drag, exceptions_on_screen, free_port, screenshot, start_streamlit, stop_streamlit, wait_for_app, wait_until_serving,
)

pytestmark = pytest.mark.e2e

MODEL = "shapes-betavae-b4"
N = 100_000


@pytest.fixture(scope="module")
def atlas_server(tmp_path_factory):
    """A server whose user cache already holds the 10⁵ shapes, their encodings and PCA (as after a
    first visit), so the page draws at once."""
    from tests.e2e.conftest import require_chromium

    require_chromium()
    cache = tmp_path_factory.mktemp("atlas-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIZVAE_CACHE_DIR", str(cache))
        from vizvae.checkpoint import SHIPPED_DIR, load_checkpoint
        from vizvae.inference import atlas
        from vizvae.inference.encodings import cached_encodings, encodings_directory

        checkpoint = load_checkpoint(SHIPPED_DIR / MODEL, device="cpu")
        data = atlas.open_generated(N)
        means, _, _ = cached_encodings(checkpoint.path, checkpoint.model, data.items)
        directory = encodings_directory(checkpoint.path, data.items)[0]
        coords = np.array(atlas.atlas_projection(directory, means, "pca").coords)
    port = free_port()
    process = start_streamlit(port, env={"VIZVAE_CACHE_DIR": str(cache)})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process)
        yield url, coords
    finally:
        stop_streamlit(process)


def query(page) -> dict[str, str]:
    return {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query).items()}


def drag_on_atlas(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    drag(page, ".st-key-atlas_chart canvas", start, end)


def in_box(coords: np.ndarray, box: list[float]) -> np.ndarray:
    return (coords[:, 0] >= box[0]) & (coords[:, 0] <= box[1]) & (coords[:, 1] >= box[2]) & (coords[:, 1] <= box[3])


def test_a_box_selects_every_point_inside_it_and_draws_their_posteriors(atlas_server, page):
    url, coords = atlas_server
    page.goto(f"{url}/atlas?model={MODEL}&data=shapes-{N}")
    wait_for_app(page)
    assert exceptions_on_screen(page) == []
    page.wait_for_function("() => Number(document.querySelector('.st-key-atlas_chart .atlas')?.dataset.points) > 0")
    assert page.locator(".st-key-atlas_chart .atlas").get_attribute("data-points") == "10000"  # the default sample
    drag_on_atlas(page, (0.40, 0.40), (0.55, 0.58))
    page.wait_for_function("() => new URLSearchParams(location.search).get('sel')?.startsWith('box:')")
    page.locator(".st-key-atlas_posterior img").wait_for()
    wait_for_app(page)
    box = [float(v) for v in query(page)["sel"].removeprefix("box:").split(",")]
    # the box in the URL has 6 significant digits; a point that close to an edge could go either way
    expected = int(in_box(coords, box).sum())
    near_edge = int(in_box(coords, [box[0] - 1e-5, box[1] + 1e-5, box[2] - 1e-5, box[3] + 1e-5]).sum()) - \
        int(in_box(coords, [box[0] + 1e-5, box[1] - 1e-5, box[2] + 1e-5, box[3] - 1e-5]).sum())
    shown = page.locator(".st-key-atlas_selected").get_by_text("items selected").inner_text()
    count = int(shown.split()[0].replace(",", ""))
    assert abs(count - expected) <= near_edge and 100 < count < N
    assert page.locator(".st-key-atlas_posterior img").count() == 1  # the posterior of an item in focus
    assert page.locator(".st-key-atlas_selection_means img").count() == 1
    focus = int(query(page)["focus"])
    assert in_box(coords[focus: focus + 1], [box[0] - 1e-5, box[1] + 1e-5, box[2] - 1e-5, box[3] + 1e-5])[0]
    screenshot(page, "atlas-box-selection")
    assert exceptions_on_screen(page) == []


def test_hover_shows_a_thumbnail_and_the_wheel_zooms_into_more_points(atlas_server, page):
    url, coords = atlas_server
    page.goto(f"{url}/atlas?model={MODEL}&data=shapes-{N}")
    wait_for_app(page)
    page.wait_for_function("() => Number(document.querySelector('.st-key-atlas_chart .atlas')?.dataset.points) > 0")
    area = page.locator(".st-key-atlas_chart canvas").bounding_box()
    centre = (area["x"] + area["width"] * 0.5, area["y"] + area["height"] * 0.5)
    page.mouse.move(*centre)
    page.mouse.move(centre[0] + 2, centre[1] + 1)
    tip = page.locator(".st-key-atlas_chart .tip")
    tip.locator("img").wait_for(timeout=15_000)  # the item's original and reconstruction, from the server
    assert tip.inner_text().startswith("item ")
    page.mouse.wheel(0, -600)  # zoom in around the centre
    page.wait_for_function("() => new URLSearchParams(location.search).has('view')")
    wait_for_app(page)
    view = [float(v) for v in query(page)["view"].split(",")]
    in_view = int(in_box(coords, view).sum())
    near_edge = int(in_box(coords, [view[0] - 1e-5, view[1] + 1e-5, view[2] - 1e-5, view[3] + 1e-5]).sum()) - \
        int(in_box(coords, [view[0] + 1e-5, view[1] - 1e-5, view[2] + 1e-5, view[3] - 1e-5]).sum())
    caption = page.get_by_text("points in view are drawn").inner_text()
    counted = int(caption.split(" points in view")[0].split()[-1].replace(",", ""))
    assert abs(counted - in_view) <= near_edge and in_view < N  # the URL's view has 6 significant digits
    assert exceptions_on_screen(page) == []
