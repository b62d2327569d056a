import io

import numpy as np
import pytest
from PIL import Image

from vizvae.viz.images import grid_png, image_grid, paired_rows, png_bytes


def test_grid_places_each_image_in_its_cell():
    images = np.stack([np.full(6, v) for v in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)]).reshape(2, 3, 6)  # (rows, cols, 2*3)
    canvas = image_grid(images, (1, 2, 3), gutter=1, gutter_value=0.5)
    assert canvas.shape == (2 * (2 + 1) + 1, 3 * (3 + 1) + 1) and canvas.dtype == np.uint8
    # cell (r, c) starts at (1 + 3r, 1 + 4c) and is 2x3 pixels of its value
    assert np.all(canvas[4:6, 5:8] == round(0.8 * 255))
    assert np.all(canvas[1:3, 1:4] == 0)
    assert canvas[0, 0] == round(0.5 * 255)


def test_flat_images_wrap_into_rows_and_scale():
    images = np.ones((5, 4))
    canvas = image_grid(images, (2, 2), columns=3, gutter=0, scale=2)
    assert canvas.shape == (2 * 2 * 2, 3 * 2 * 2)
    assert np.all(canvas[:4, :] == 255)  # first row: three white images
    assert np.all(canvas[4:, 8:] == round(0.5 * 255))  # sixth slot is empty


def test_paired_rows_put_each_reconstruction_under_its_original():
    originals = np.arange(5)[:, None] * np.ones((5, 3))
    reconstructions = -originals
    grid = paired_rows(originals, reconstructions, columns=3)
    assert grid.shape == (4, 3, 3)
    np.testing.assert_array_equal(grid[0, :, 0], [0, 1, 2])
    np.testing.assert_array_equal(grid[1, :, 0], [0, -1, -2])
    np.testing.assert_array_equal(grid[2, :2, 0], [3, 4])
    np.testing.assert_array_equal(grid[3, :2, 0], [-3, -4])
    assert np.isnan(grid[2, 2]).all()
    with pytest.raises(ValueError):
        paired_rows(originals, reconstructions[:2], 3)


def test_png_round_trip():
    canvas = image_grid(np.random.default_rng(0).random((4, 784)), (1, 28, 28), columns=2, scale=2)
    image = Image.open(io.BytesIO(png_bytes(canvas)))
    np.testing.assert_array_equal(np.asarray(image), canvas)
    assert grid_png(np.zeros((3, 784)), (1, 28, 28))[:8] == b"\x89PNG\r\n\x1a\n"
