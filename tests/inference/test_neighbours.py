"""Exact latent nearest neighbours (``vizvae.inference.neighbours``) against scikit-learn's brute force."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from vizvae.errors import VizvaeError
from vizvae.inference.neighbours import LatentNeighbours


def test_the_neighbours_are_sklearn_s_exact_ones(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.standard_normal((20_000, 6)).astype(np.float32)
    file = tmp_path / "means.npy"
    np.save(file, points)
    index = LatentNeighbours(np.load(file, mmap_mode="r"))  # works on a memory map
    reference = NearestNeighbors(n_neighbors=20, algorithm="brute").fit(points)
    for query in (points[17], rng.standard_normal(6).astype(np.float32) * 3):
        indices, distances = index.query(query, k=20)
        expected_d, expected_i = reference.kneighbors(query[None])
        assert np.array_equal(indices, expected_i[0])
        # float32 expansion ‖x‖² − 2x·q + ‖q‖²: rounding ~ eps·(‖x‖² + ‖q‖²), so ~1e-5 relative at these norms
        assert np.allclose(distances, expected_d[0], rtol=1e-4, atol=1e-3)
    assert index.query(points[17], k=1)[0][0] == 17
    assert index.query(points[17], k=1, exclude=17)[0][0] != 17


def test_a_bad_query_is_refused_with_a_message():
    index = LatentNeighbours(np.zeros((5, 3), dtype=np.float32))
    for bad in ([1.0, 2.0], [1.0, np.nan, 0.0], "abc"):
        with pytest.raises(VizvaeError):
            index.query(bad)
    with pytest.raises(VizvaeError, match="k must be between 1 and 5"):
        index.query([0, 0, 0], k=6)
    with pytest.raises(VizvaeError):
        LatentNeighbours(np.zeros((0, 3)))


def test_recall_at_20_against_brute_force_on_ten_thousand_points():
    """Recall@20 over 100 queries, against scikit-learn's brute force in float64: exact search, so
    every neighbour is found (the issue's floor for an approximate index is 0.95)."""
    rng = np.random.default_rng(3)
    points = rng.standard_normal((10_000, 10)).astype(np.float32)
    index = LatentNeighbours(points)
    reference = NearestNeighbors(n_neighbors=20, algorithm="brute").fit(points.astype(np.float64))
    queries = rng.standard_normal((100, 10)).astype(np.float32)
    expected = reference.kneighbors(queries.astype(np.float64), return_distance=False)
    found = [set(index.query(q, k=20)[0].tolist()) for q in queries]
    recall = np.mean([len(f & set(e.tolist())) / 20 for f, e in zip(found, expected)])
    assert recall >= 0.95
    assert recall == 1.0  # nearest distances tie only by float32 rounding, which random normals do not meet here
