"""``shapes`` at scale (``vizvae.data.shapes_scale``): the renderer is the grid's, the factors are
seeded and in range, and the set is written once into memory maps, cancellable, never half-written."""

from __future__ import annotations

import numpy as np
import pytest

from vizvae.data.shapes import FACTOR_NAMES, FACTOR_VALUES, factor_grid, render_shapes
from vizvae.data.shapes_scale import RANGES, draw_factors, large_shapes, render_factors
from vizvae.errors import DataError


def test_at_the_grid_values_it_draws_the_grid_images_exactly():
    codes = factor_grid()[::7]
    values = np.stack([FACTOR_VALUES[name][codes[:, i]] for i, name in enumerate(FACTOR_NAMES)], axis=1)
    assert np.array_equal(render_factors(values, supersample=4), render_shapes(codes))


def test_factors_are_seeded_in_range_and_a_prefix_of_any_larger_set():
    factors = draw_factors(3000, seed=4)
    assert np.array_equal(factors[:1000], draw_factors(1000, seed=4))
    assert not np.array_equal(factors[:1000], draw_factors(1000, seed=5))
    assert set(np.unique(factors[:, 0])) == {0.0, 1.0, 2.0}
    for column, name in enumerate(FACTOR_NAMES[1:], start=1):
        low, high = RANGES[name]
        assert low <= factors[:, column].min() and factors[:, column].max() <= high
    # uniform shapes: each third within 4 binomial standard errors
    counts = np.bincount(factors[:, 0].astype(int))
    assert np.all(np.abs(counts - 1000) < 4 * np.sqrt(3000 * (1 / 3) * (2 / 3)))


def test_sub_pixel_positions_move_the_image_continuously():
    base = np.array([[0, 4.0, 10.0, 16.0, 16.0]])
    shifted = base + np.array([[0, 0, 0, 0.25, 0]])
    a, b = render_factors(base), render_factors(shifted)
    # a quarter pixel moves the centre of mass by a quarter pixel (to the anti-aliasing's resolution)
    columns = np.arange(32)
    centre = lambda image: (image.reshape(32, 32).sum(0) * columns).sum() / image.sum()  # noqa: E731
    assert centre(b[0]) - centre(a[0]) == pytest.approx(0.25, abs=0.05)


def test_the_set_is_written_once_as_memory_maps(tmp_path):
    calls = []
    images, factors = large_shapes(5000, seed=1, folder=tmp_path, progress=lambda done, n: calls.append(done))
    assert isinstance(images, np.memmap) and images.shape == (5000, 1024) and images.dtype == np.float32
    assert not images.flags.writeable
    assert calls[-1] == 5000 and len(calls) == 3  # chunks of 2048
    assert np.array_equal(factors, draw_factors(5000, seed=1))
    assert np.array_equal(images[4321], render_factors(factors[4321:4322])[0])
    again, _ = large_shapes(5000, seed=1, folder=tmp_path, progress=lambda done, n: calls.append(-1))
    assert -1 not in calls and np.array_equal(again[:10], images[:10])  # reused, not re-rendered


def test_cancelling_or_a_bad_size_leaves_no_file(tmp_path):
    with pytest.raises(DataError, match="cancelled"):
        large_shapes(5000, folder=tmp_path, cancelled=lambda: True)
    assert list(tmp_path.iterdir()) == []
    for n in (0, -3, 10 ** 9):
        with pytest.raises(DataError, match="1 to"):
            large_shapes(n, folder=tmp_path / "never")
    assert not (tmp_path / "never").exists()
