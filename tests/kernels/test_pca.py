"""Principal components (vizvae/kernels/pca.py) against a cloud with a known long axis."""

from __future__ import annotations

import numpy as np

from vizvae.kernels.pca import principal_components


def test_the_first_axis_is_the_long_direction_with_its_share_of_the_variance():
    generator = np.random.default_rng(0)
    direction = np.array([3.0, 4.0, 0.0]) / 5.0
    points = generator.normal(size=(4000, 1)) * 3.0 * direction + generator.normal(size=(4000, 3)) * 0.3 + 1.0
    components = principal_components(points)
    assert abs(abs(components.axes[0] @ direction) - 1) < 1e-3
    np.testing.assert_allclose(components.axes @ components.axes.T, np.eye(2), atol=1e-10)
    assert abs(components.explained_variance_ratio[0] - (9.0 + 0.09) / (9.0 + 3 * 0.09)) < 0.01
    assert all(axis[np.abs(axis).argmax()] > 0 for axis in components.axes)  # signs fixed
    np.testing.assert_allclose(components.scores(points).mean(0), 0.0, atol=1e-9)


def test_a_rectangle_of_four_points_by_hand_and_padding_for_a_one_dimensional_cloud():
    points = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0], [2.0, 1.0]])
    components = principal_components(points)
    np.testing.assert_allclose(components.axes, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(components.explained_variance_ratio, [0.8, 0.2])
    np.testing.assert_allclose(components.scores(points), [[-1, -0.5], [1, -0.5], [-1, 0.5], [1, 0.5]])
    line = principal_components(np.array([[1.0], [3.0]]))
    np.testing.assert_allclose(line.axes, [[1.0], [0.0]])
    np.testing.assert_allclose(line.explained_variance_ratio, [1.0, 0.0])
