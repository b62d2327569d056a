"""Images, figures and tables of the Inpainting page: what they are given is what they draw."""

from __future__ import annotations

import io

import numpy as np

from vizvae.viz.inpainting import (
    HIDDEN_RGB, UNCERTAINTY_ANCHORS, InpaintingRow, inpainting_figure_png, label_probabilities_figure, observed_rgb,
    pixel_canvas_figure, scores_table, strip_png, uncertainty_rgb,
)

SHAPE = (1, 4, 5)


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))


def test_hidden_pixels_are_coloured_and_observed_ones_kept():
    image = np.linspace(0, 1, 20)
    mask = np.ones(20, dtype=bool)
    mask[[3, 7]] = False
    rgb = observed_rgb(image, mask, SHAPE)
    assert rgb.shape == (4, 5, 3)
    np.testing.assert_allclose(rgb[0, 3], HIDDEN_RGB)
    np.testing.assert_allclose(rgb[1, 2], HIDDEN_RGB)
    np.testing.assert_allclose(rgb[0, 0], [0, 0, 0])
    np.testing.assert_allclose(rgb[3, 4], [1, 1, 1])


def test_uncertainty_scale_runs_from_the_first_to_the_last_anchor():
    variance = np.zeros(20)
    variance[1], variance[2] = 0.25, 1.0  # at and beyond vmax
    rgb = uncertainty_rgb(variance, SHAPE, vmax=0.25)
    np.testing.assert_allclose(rgb[0, 0], UNCERTAINTY_ANCHORS[0])
    np.testing.assert_allclose(rgb[0, 1], UNCERTAINTY_ANCHORS[-1])
    np.testing.assert_allclose(rgb[0, 2], UNCERTAINTY_ANCHORS[-1])
    brightness = uncertainty_rgb(np.linspace(0, 0.25, 20), SHAPE, 0.25).sum(-1).reshape(-1)
    assert (np.diff(brightness) > 0).all()


def test_pixel_canvas_has_one_point_per_pixel_in_row_major_order():
    image = np.zeros(20)
    image[6] = 1.0
    mask = np.ones(20, dtype=bool)
    mask[0] = False
    figure = pixel_canvas_figure(image, SHAPE, mask)
    (trace,) = figure.data
    assert len(trace.x) == 20 and (trace.x[6], trace.y[6]) == (1, 1)  # pixel 6: row 1, column 1
    assert trace.marker.color[6] == "rgb(255,255,255)" and trace.marker.color[1] == "rgb(0,0,0)"
    assert trace.marker.color[0] == "rgb(40,107,216)"  # hidden
    assert figure.layout.dragmode == "lasso"


def test_the_comparison_picture_has_a_row_per_method_and_a_column_per_sample():
    rng = np.random.default_rng(0)
    rows = [InpaintingRow(f"method {i}", rng.random(20), rng.random((3, 20)), rng.random(20) / 4) for i in range(3)]
    picture = decode_png(inpainting_figure_png(rng.random(20), observed_rgb(rng.random(20), None, SHAPE), rows,
                                               SHAPE, n_samples=3, scale=2, gutter=3))
    height, width = picture.shape[:2]
    assert height == (2 + 3) * (4 * 2 + 3) + 3 + 16 and width == 150 + 5 * (5 * 2 + 3) + 3
    assert decode_png(strip_png(rng.random((3, 20)), SHAPE, scale=1)).shape[1] == 3 * 5 + 4 * 2


def test_label_probabilities_and_scores():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    figure = label_probabilities_figure(["encoder", "HMC"], probs, ["0", "1", "2"])
    np.testing.assert_allclose(figure.data[0].z, probs)
    assert list(figure.data[0].y) == ["encoder", "HMC"]
    table = scores_table([{"row": "HMC", "MSE": 0.1, "NLL (nats)": 12.0}, {"row": "zero", "MSE": 0.3}])
    assert list(table["row"]) == ["HMC", "zero"] and table["NLL (nats)"].isna().tolist() == [False, True]
    assert "runtime (s)" in table.columns
