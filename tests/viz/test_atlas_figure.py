"""The latent atlas' figure (``vizvae.viz.atlas``): the density image and its smoothing, one WebGL
trace per category whose ``customdata`` are the rows, and a box drawn as plotly's own selection."""

from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go

from vizvae.inference.atlas import View, density
from vizvae.viz.atlas import Colouring, atlas_figure, density_png, smoothed

# NumPy validates its float32 log1p to within 2 ULP (numpy/_core/tests/data/umath-validation-set-log1p.csv),
# i.e. 2·2⁻²³ relative; 2⁻²¹ leaves room for the float64 reference's own rounding
LOG1P_F32 = 2.0 ** -21


def _scene(seed: int = 0):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 3, (10, 12))  # (y, x) cells, about a third empty
    xy = rng.uniform(0, 1, (9, 2)).astype(np.float32)
    rows = np.array([40, 41, 45, 50, 52, 60, 61, 77, 90])  # the drawn points' rows in the whole data
    return counts, xy, rows


def test_each_present_category_is_one_webgl_trace_of_its_rows():
    counts, xy, rows = _scene()
    codes = np.array([0, 2, 2, 0, 3, 0, 2, 3, 3])  # category 1 ("circle") is not among the drawn points
    colouring = Colouring("shape", codes, ["square", "circle", "heart", "ellipse"])
    fig = atlas_figure(counts, View(0.0, 1.0, 0.0, 1.0), xy, rows, colouring, selected=[45, 90, 999])
    points = [t for t in fig.data if isinstance(t, go.Scattergl)]
    assert [t.name for t in points] == ["square", "heart", "ellipse"]
    for trace, code in zip(points, (0, 2, 3)):
        assert np.array_equal(trace.customdata, rows[codes == code])
        assert np.array_equal(trace.x, xy[codes == code, 0]) and np.array_equal(trace.y, xy[codes == code, 1])
    # a selected row is picked by its index inside its own trace; a row not drawn (999) picks nothing
    assert points[1].selectedpoints == (1,) and points[2].selectedpoints == (2,) and points[0].selectedpoints is None
    assert fig.layout.legend.title.text == "shape" and fig.layout.dragmode == "select"


def test_a_number_colours_one_trace_and_no_colouring_draws_plain_items():
    counts, xy, rows = _scene(1)
    values = np.linspace(-1.0, 1.0, 9)
    fig = atlas_figure(counts, View(0.0, 1.0, 0.0, 1.0), xy, rows, Colouring("KL", values))
    (trace,) = [t for t in fig.data if isinstance(t, go.Scattergl)]
    assert np.array_equal(trace.marker.color, values.astype(np.float32)) and np.array_equal(trace.customdata, rows)
    (plain,) = [t for t in atlas_figure(counts, View(0.0, 1.0, 0.0, 1.0), xy, rows, None).data
                if isinstance(t, go.Scattergl)]
    assert plain.name == "items" and np.array_equal(plain.customdata, rows)


def test_a_box_is_plotly_s_own_selection_and_rings_mark_the_neighbours():
    counts, xy, rows = _scene(2)
    view, box = View(-2.0, 3.0, 1.0, 5.0), View(-0.5, 0.25, 2.0, 4.5)
    fig = atlas_figure(counts, view, xy, rows, None, box=box, rings=np.array([[0.5, 2.5], [1.0, 3.0]]))
    (selection,) = fig.layout.selections
    assert (selection.type, selection.x0, selection.x1, selection.y0, selection.y1) == ("rect", -0.5, 0.25, 2.0, 4.5)
    assert tuple(fig.layout.xaxis.range) == (-2.0, 3.0) and tuple(fig.layout.yaxis.range) == (1.0, 5.0)
    assert fig.data[-1].name == "nearest" and list(fig.data[-1].x) == [0.5, 1.0]
    assert atlas_figure(counts, view, xy, rows, None).layout.selections == ()


def _rgba(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def test_the_density_image_is_upside_up_transparent_away_from_points_and_darkest_at_the_mode():
    # one point at (0.3, 0.1) of the unit square in 12 × 12 cells: cell (row 1, column 3) from the
    # bottom; drawn 2× as pixels, with the image's first row at the top (largest y)
    one = density(np.array([[0.3, 0.1]], dtype=np.float32), View(0.0, 1.0, 0.0, 1.0), bins=12)
    assert np.argwhere(one).tolist() == [[1, 3]]
    image = _rgba(density_png(one))
    assert image.shape == (24, 24, 4)
    opaque = np.argwhere(image[..., 3] > 0)
    # the point's cell and the contour lines around it: the smoothing reaches 2 cells, and a line is
    # drawn on the first pixel past a change of level, so at most 3 cells from the point's
    assert opaque[:, 0].min() >= 24 - 2 * (1 + 1 + 3) and opaque[:, 1].max() < 2 * (3 + 1 + 3)
    assert image[24 - 2 * 1 - 1, 2 * 3 + 1, 3] == 255  # inside the point's cell
    assert image[:8, :, 3].max() == 0 and image[:, 16:, 3].max() == 0  # far from it: nothing drawn
    # a dense cell is darker than a sparse one (grey falls with log(1 + count))
    two = np.zeros((12, 12), dtype=np.int64)
    two[2, 2], two[9, 9] = 1, 1000
    image = _rgba(density_png(two, upscale=1))
    assert image[12 - 1 - 9, 9, 0] < image[12 - 1 - 2, 2, 0]
    figure = atlas_figure(one, View(0.0, 1.0, 0.0, 1.0), *_scene(3)[1:], None)
    (layer,) = figure.layout.images
    assert layer.source.startswith("data:image/png;base64,") and layer.layer == "below"
    assert (layer.x, layer.y, layer.sizex, layer.sizey) == (0.0, 1.0, 1.0, 1.0)  # the image's top-left at (x0, y1)


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
