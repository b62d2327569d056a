"""The Latent space page in Chromium: a click selects a point, shift-click adds the next ones (the
page promises shift-click for picking two points to interpolate), a plain click starts over."""

from __future__ import annotations

from tests.e2e.conftest import exceptions_on_screen, screenshot, wait_for_app

# Screen positions of the scatter's points, and the rows with no other point within 14 px (a click
# there can only hit that row).
POINTS_ON_SCREEN = """() => {
  const gd = document.querySelector('.st-key-latent_projection .js-plotly-plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, trace = gd._fullData[0];
  const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
  const xy = Array.from(trace.x, (x, i) => [box.left + xa.l2p(x), box.top + ya.l2p(trace.y[i])]);
  const isolated = [];
  for (let i = 0; i < xy.length && isolated.length < 4; i++) {
    const inside = xy[i][0] > box.left + 20 && xy[i][0] < box.right - 20 && xy[i][1] > box.top + 20 && xy[i][1] < box.bottom - 20;
    if (inside && xy.every((q, j) => j === i || Math.hypot(q[0] - xy[i][0], q[1] - xy[i][1]) > 14)) isolated.push(i);
  }
  return isolated.map(i => [i, xy[i][0], xy[i][1]]);
}"""


def selected_rows(page) -> str:
    return page.locator('.st-key-latent_points input').input_value()


def click_point(page, x: float, y: float, shift: bool = False) -> None:
    page.mouse.move(x, y)
    page.wait_for_timeout(300)  # plotly picks the point under the pointer on hover
    if shift:
        page.keyboard.down("Shift")
    page.mouse.click(x, y)
    if shift:
        page.keyboard.up("Shift")
    page.wait_for_timeout(500)
    wait_for_app(page)


def test_shift_click_adds_to_the_selection(app_url, page):
    page.goto(f"{app_url}/latent_space?model=mnist-vae-2d")
    wait_for_app(page)
    assert exceptions_on_screen(page) == []
    page.locator(".st-key-latent_projection").scroll_into_view_if_needed()
    (a, ax, ay), (b, bx, by), (c, cx, cy), (d, dx, dy) = page.evaluate(POINTS_ON_SCREEN)
    click_point(page, ax, ay)
    assert selected_rows(page) == f"{a}"
    click_point(page, bx, by, shift=True)
    assert selected_rows(page) == f"{a}, {b}"
    click_point(page, cx, cy, shift=True)
    assert selected_rows(page) == f"{a}, {b}, {c}"
    assert f"points={a}%2C{b}%2C{c}" in page.url
    assert page.get_by_text(f"Linear: row {a} → row {b}").count() == 1  # two points: the interpolation
    screenshot(page, "latent_space-shift-click")
    click_point(page, dx, dy)  # a plain click starts a new selection
    assert selected_rows(page) == f"{d}"
    assert exceptions_on_screen(page) == []
