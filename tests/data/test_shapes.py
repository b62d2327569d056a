from types import SimpleNamespace

import numpy as np
import pytest

from vizvae.data import DataError, load_dataset
from vizvae.data.shapes import (
    FACTOR_NAMES, FACTOR_VALUES, factor_grid, generate_shapes, ground_truth_factors, render_shapes,
)

N_IMAGES = 3 * 4 * 5 * 8 * 5


@pytest.fixture(scope="module")
def shapes():
    return load_dataset("shapes", binarize=True)


def test_generation_is_deterministic_under_a_seed():
    images_a, codes_a = generate_shapes(seed=3)
    images_b, codes_b = generate_shapes(seed=3)
    assert np.array_equal(images_a, images_b) and np.array_equal(codes_a, codes_b)
    images_c, codes_c = generate_shapes(seed=4)
    assert not np.array_equal(codes_a, codes_c)  # another seed, another order...
    order_a, order_c = np.lexsort(codes_a.T[::-1]), np.lexsort(codes_c.T[::-1])
    assert np.array_equal(images_a[order_a], images_c[order_c])  # ...of the same images


def test_factors_are_the_complete_grid_hence_independent(shapes):
    codes = np.concatenate([shapes.factors_train, shapes.factors_test])
    assert codes.shape == (N_IMAGES, 5) and len(shapes.x_train) + len(shapes.x_test) == N_IMAGES
    assert len(np.unique(codes, axis=0)) == N_IMAGES  # every combination exactly once
    levels = [len(FACTOR_VALUES[name]) for name in FACTOR_NAMES]
    # complete product grid <=> the joint distribution is the product of uniform marginals
    joint = np.zeros(levels)
    np.add.at(joint, tuple(codes.T), 1)
    assert np.all(joint == 1)
    for k, n_levels in enumerate(levels):
        assert np.bincount(codes[:, k]).tolist() == [N_IMAGES // n_levels] * n_levels


def test_dataset_exposes_factors_and_labels(shapes):
    factors = ground_truth_factors(shapes)
    assert factors.names == ("shape", "scale", "rotation", "x", "y") and factors.n_levels == (3, 4, 5, 8, 5)
    assert factors.value_labels(0) == ["square", "ellipse", "triangle"]
    assert shapes.image_shape == (1, 32, 32) and shapes.x_train.shape == (1920, 1024)
    assert set(np.unique(shapes.x_train)) == {0.0, 1.0}  # binarised
    assert np.array_equal(shapes.y_train, shapes.factors_train[:, 0])  # the label is the shape
    assert shapes.describe()["preprocessing"]["factors"]["x"] == 8


def test_every_image_is_distinct_and_inside_the_canvas():
    images, codes = generate_shapes()
    assert len(np.unique(images.round(3), axis=0)) == N_IMAGES  # every factor is identifiable
    canvas = images.reshape(-1, 32, 32)
    border = np.concatenate([canvas[:, 0], canvas[:, -1], canvas[:, :, 0], canvas[:, :, -1]], axis=1)
    assert border.max() == 0.0  # no shape is clipped by the edge


def test_rendering_follows_the_factors():
    grid = factor_grid()
    square_small = grid[(grid[:, 0] == 0) & (grid[:, 1] == 0) & (grid[:, 2] == 0)][0]  # x = 9, y = 12 px
    image = render_shapes(square_small[None])[0].reshape(32, 32)
    # an axis-aligned square of half side 3 px centred at column 9, row 12 covers columns 6..11, rows 9..14
    assert image.sum() == pytest.approx(36.0)
    assert np.all(image[9:15, 6:12] == 1.0)
    moved = square_small.copy()
    moved[3] = 7  # x = 23 px
    shifted = render_shapes(moved[None])[0].reshape(32, 32)
    assert np.array_equal(shifted[:, 14:], image[:, :18])  # a pure translation by 14 px
    bigger = square_small.copy()
    bigger[1] = 3  # half side 5 px
    assert render_shapes(bigger[None]).sum() == pytest.approx(100.0)


def test_load_dataset_is_cached_and_other_data_have_no_factors(shapes):
    assert load_dataset("shapes", binarize=True) is shapes
    assert load_dataset("shapes").x_train.max() == 1.0 and len(np.unique(load_dataset("shapes").x_train)) > 2  # grey
    with pytest.raises(DataError, match="no ground-truth factors"):
        ground_truth_factors(SimpleNamespace(name="mnist"))
