"""The latent atlas' picture (``vizvae.viz.atlas``): the density image and its smoothing, and the
canvas' payload — the drawn points, their rows and colour codes, the legend, the selection's shape."""

from __future__ import annotations

import base64
import io
import json

import numpy as np

from vizvae.inference.atlas import View, density
from vizvae.viz.atlas import CONTOUR_SMOOTHING, GREY_LIGHT, GREY_RANGE, NUMBER_SHADES, Colouring, canvas_payload, density_png, smoothed, with_selection
from vizvae.viz.figures import CLASS_COLOURS

# NumPy validates its float32 log1p to within 2 ULP (numpy/_core/tests/data/umath-validation-set-log1p.csv),
# i.e. 2·2⁻²³ relative; 2⁻²¹ leaves room for the float64 reference's own rounding
LOG1P_F32 = 2.0 ** -21


def _scene(seed: int = 0):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 3, (10, 12))  # (y, x) cells, about a third empty
    xy = rng.uniform(0, 1, (9, 2)).astype(np.float32)
    rows = np.array([40, 41, 45, 50, 52, 60, 61, 77, 90])  # the drawn points' rows in the whole data
    return counts, xy, rows


def _array(payload: dict, name: str, dtype) -> np.ndarray:
    return np.frombuffer(base64.b64decode(payload[name]), dtype=dtype)


def test_the_payload_carries_every_drawn_point_its_row_and_its_category():
    counts, xy, rows = _scene()
    codes = np.array([0, 2, 2, 0, 3, 0, 2, 3, 3])  # category 1 ("circle") is not among the drawn points
    colouring = Colouring("shape", codes, ["square", "circle", "heart", "ellipse"])
    payload = canvas_payload(counts, View(0.0, 1.0, 0.0, 1.0), View(-1.0, 2.0, -1.0, 2.0), xy, rows, colouring)
    assert np.array_equal(_array(payload, "x", np.float32), xy[:, 0]) and np.array_equal(_array(payload, "y", np.float32), xy[:, 1])
    assert np.array_equal(_array(payload, "rows", np.int32), rows)
    assert np.array_equal(_array(payload, "codes", np.uint8), codes)
    assert payload["names"] == ["square", "circle", "heart", "ellipse"]
    assert payload["colours"][:4] == CLASS_COLOURS[:4]
    # the legend names only the categories drawn, each with its colour
    assert payload["legend"] == {"title": "shape", "entries": [["square", CLASS_COLOURS[0]], ["heart", CLASS_COLOURS[2]],
                                                                ["ellipse", CLASS_COLOURS[3]]]}
    assert payload["view"] == [0.0, 1.0, 0.0, 1.0] and payload["full"] == [-1.0, 2.0, -1.0, 2.0]
    json.dumps(payload)  # what Streamlit sends: plain JSON


def test_a_number_is_shaded_in_equal_steps_from_its_least_to_its_greatest():
    counts, xy, rows = _scene(1)
    values = np.linspace(-1.0, 1.0, 9)
    payload = canvas_payload(counts, View(0.0, 1.0, 0.0, 1.0), View(0.0, 1.0, 0.0, 1.0), xy, rows, Colouring("KL", values))
    codes = _array(payload, "codes", np.uint8)
    # 32 shades over [−1, 1]: value v gets floor((v + 1) / 2 · (32 − 1e-6)), the greatest the last shade
    assert codes.tolist() == [int(np.floor((v + 1) / 2 * (NUMBER_SHADES - 1e-6))) for v in values]
    assert codes[0] == 0 and codes[-1] == NUMBER_SHADES - 1 and len(payload["colours"]) == NUMBER_SHADES
    assert [float(e[0]) for e in payload["legend"]["entries"]] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    plain = canvas_payload(counts, View(0.0, 1.0, 0.0, 1.0), View(0.0, 1.0, 0.0, 1.0), xy, rows, None)
    assert set(_array(plain, "codes", np.uint8).tolist()) == {0} and plain["legend"] is None


def test_the_token_follows_the_arrays_and_the_selection_is_drawn_apart():
    counts, xy, rows = _scene(2)
    view = View(-2.0, 3.0, 1.0, 5.0)
    first = canvas_payload(counts, view, view, xy, rows, None, rings=np.array([[0.5, 2.5], [1.0, 3.0]]))
    assert _array(first, "rings", np.float32).tolist() == [0.5, 2.5, 1.0, 3.0]
    again = canvas_payload(counts, view, view, xy, rows, None, rings=np.array([[0.5, 2.5], [1.0, 3.0]]))
    moved = canvas_payload(counts, view, view, xy + np.float32(0.5), rows, None)
    assert first["token"] == again["token"] != moved["token"]
    boxed = with_selection(first, "box:-0.5,0.25,2,4.5")
    assert boxed["selection"] == {"kind": "box", "box": [-0.5, 0.25, 2.0, 4.5]} and boxed["token"] == first["token"]
    assert with_selection(first, "rows:3,17")["selection"] == {"kind": "rows", "rows": [3, 17]}
    lasso = with_selection(first, "lasso:0 0;1 0;1 1")["selection"]
    assert lasso == {"kind": "lasso", "xs": [0.0, 1.0, 1.0], "ys": [0.0, 0.0, 1.0]}
    for hostile in ("box:1,2,3", "box:nan,1,2,3", "lasso:0 0;1 1", "lasso:0 0;1 x;2 2", "rows:1,a", "x:1", "", None):
        assert with_selection(first, hostile)["selection"] is None, hostile


def _rgba(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def test_the_density_image_is_upside_up_transparent_away_from_points_and_darkest_at_the_mode():
    # one point at (0.1, 0.05) of the unit square in 40 × 40 cells: cell (row 2, column 4) from the
    # bottom; drawn 2× as pixels, with the image's first row at the top (largest y)
    bins, reach = 40, CONTOUR_SMOOTHING + 1  # the blur spreads a cell per pass; a line is drawn one cell past
    one = density(np.array([[0.1, 0.05]], dtype=np.float32), View(0.0, 1.0, 0.0, 1.0), bins=bins)
    assert np.argwhere(one).tolist() == [[2, 4]]
    image = _rgba(density_png(one, upscale=2))
    assert image.shape == (2 * bins, 2 * bins, 4)
    opaque = np.argwhere(image[..., 3] > 0)
    assert opaque[:, 0].min() >= 2 * (bins - 1 - (2 + reach)) and opaque[:, 1].max() < 2 * (4 + 1 + reach)
    assert image[2 * (bins - 1 - 2) + 1, 2 * 4 + 1, 3] == 255  # inside the point's cell
    assert image[: 2 * (bins - 3 - reach) - 2, :, 3].max() == 0 and image[:, 2 * (5 + reach) + 2:, 3].max() == 0
    # grey falls with log(1 + count): 235 − 150·log(1 + c)/log(1 + max). A contour line only ever
    # takes the first pixel row or column of a cell's 4 × 4 block, so the block's inner pixels show it
    two = np.zeros((12, 12), dtype=np.int64)
    two[2, 2], two[9, 9] = 1, 1000
    image = _rgba(density_png(two, upscale=4))
    inner = lambda r, c: image[48 - 1 - (4 * r + 2), 4 * c + 2]  # noqa: E731
    assert inner(9, 9)[0] == GREY_LIGHT - GREY_RANGE
    assert inner(2, 2)[0] == int(GREY_LIGHT - GREY_RANGE * np.log(2) / np.log(1001))
    assert _rgba(density_png(np.ones((24, 24)))).shape == (480, 480, 4)  # a coarse grid drawn ~480 pixels across


def test_smoothing_keeps_the_total_and_spreads_a_point_binomially():
    # with edge padding each pass along an axis adds a/4 at the first cell and removes it at the
    # second's neighbour exactly: Σ(¼·low + ½·mid + ¼·high) = ¼(S + a₀ − aₙ₋₁) + ½S + ¼(S − a₀ + aₙ₋₁) = S,
    # for any array, mass at the border included. Counts times 1/4 and 1/2 are dyadic and small,
    # so float64 holds every value and partial sum exactly: the totals are equal, not close.
    counts = np.random.default_rng(4).integers(0, 50, (7, 9))
    counts[0, 0] = counts[-1, -1] = 1000  # mass at the corners
    for passes in (0, 1, 2, 3):
        assert smoothed(counts, passes).sum() == counts.sum()
    impulse = np.zeros((9, 9), dtype=np.int64)
    impulse[4, 4] = 1
    kernel = np.array([1, 4, 6, 4, 1]) / 16  # [1, 2, 1]/4 applied twice
    expected = np.zeros((9, 9))
    expected[2:7, 2:7] = np.outer(kernel, kernel)
    assert np.array_equal(smoothed(impulse, passes=2), expected)
    assert np.array_equal(smoothed(np.full((5, 6), 7), passes=2), np.full((5, 6), 7.0))  # a flat density stays flat
