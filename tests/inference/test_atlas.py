"""The latent atlas (``vizvae.inference.atlas``): selections over every point against independent
oracles, the density against ``np.histogram2d``, the drawn sample's prefix and zoom properties, PCA
and KL at scale against their in-memory definitions, projections stored beside the encodings, and
the text a URL or a server folder hands in."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from matplotlib.path import Path as PolygonPath

from vizvae.inference import atlas
from vizvae.inference.atlas import AtlasError, View
from vizvae.kernels.pca import principal_components
from vizvae.models.distributions import DiagonalGaussian

F32 = 2.0 ** -24  # unit roundoff of float32 (round to nearest): |fl32(a) - a| <= F32 * |a|


def float32_numbers(values) -> list[float]:
    """Python floats that are float32 numbers: compared with float32 coordinates, they give the same
    answer whether NumPy compares in float32 (NEP 50 weak scalars) or in float64, so an oracle in
    float64 is exact."""
    return [float(np.float32(v)) for v in values]


# -- selections ---------------------------------------------------------------------------------------------------
def test_a_box_selects_exactly_the_points_inside_it_in_either_corner_order():
    rng = np.random.default_rng(0)
    coords = rng.standard_normal((5000, 2)).astype(np.float32)
    x = coords[:, 0].astype(np.float64)
    y = coords[:, 1].astype(np.float64)
    for _ in range(5):
        xs, ys = float32_numbers(rng.uniform(-2, 2, 2)), float32_numbers(rng.uniform(-2, 2, 2))
        expected = np.flatnonzero((x >= min(xs)) & (x <= max(xs)) & (y >= min(ys)) & (y <= max(ys)))
        assert len(expected) > 0
        for cx in (xs, xs[::-1]):
            for cy in (ys, ys[::-1]):
                assert np.array_equal(atlas.rows_in_box(coords, tuple(cx), tuple(cy)), expected)
    # the box is closed: corners taken from points 3 and 8 select both of them
    corners_x, corners_y = (float(coords[3, 0]), float(coords[8, 0])), (float(coords[3, 1]), float(coords[8, 1]))
    assert {3, 8} <= set(atlas.rows_in_box(coords, corners_x, corners_y).tolist())
    assert len(atlas.rows_in_box(coords, (10.0, 11.0), (10.0, 11.0))) == 0


def _distance_to_edges(points: np.ndarray, vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
    """Each point's distance (n,) to the closed polygon's boundary, in float64."""
    ax, ay, bx, by = vx, vy, np.roll(vx, -1), np.roll(vy, -1)
    px, py = points[:, :1], points[:, 1:]
    dx, dy = bx - ax, by - ay
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(px - (ax + t * dx), py - (ay + t * dy)).min(1)


def _star(points: int, outer: float, inner: float) -> tuple[np.ndarray, np.ndarray]:
    angle = np.pi / 2 + np.arange(2 * points) * np.pi / points
    radius = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return 0.5 + radius * np.cos(angle), 0.5 + radius * np.sin(angle)


POLYGONS = {
    "star": _star(5, 0.45, 0.18),  # simple, non-convex
    "U": (np.array([0.1, 0.9, 0.9, 0.6, 0.6, 0.4, 0.4, 0.1]), np.array([0.1, 0.1, 0.9, 0.9, 0.35, 0.35, 0.9, 0.9])),
    "random": (np.random.default_rng(7).uniform(0, 1, 9), np.random.default_rng(8).uniform(0, 1, 9)),  # crosses itself
}


@pytest.mark.parametrize("name", POLYGONS)
def test_a_lasso_selects_what_matplotlib_finds_inside_the_polygon(name):
    vx, vy = POLYGONS[name]
    vx, vy = np.array(float32_numbers(vx)), np.array(float32_numbers(vy))
    coords = np.random.default_rng(1).uniform(-0.1, 1.1, (5000, 2)).astype(np.float32)
    points = coords.astype(np.float64)
    # on (or within rounding of) an edge the two tests may honestly disagree: leave those points out
    clear = _distance_to_edges(points, vx, vy) > 1e-9
    inside = PolygonPath(np.column_stack([vx, vy])).contains_points(points)
    if name == "random":  # a self-crossing polygon: matplotlib's rule is not documented, so ray casting decides
        inside = np.array([_ray_casting(p, vx, vy) for p in points])
    expected = np.flatnonzero(inside & clear)
    assert 300 < len(expected) < 4000  # the polygon cuts the cloud
    for xs, ys in ((vx, vy), (vx[::-1], vy[::-1]), (np.append(vx, vx[0]), np.append(vy, vy[0]))):
        selected = atlas.rows_in_lasso(coords, list(xs), list(ys))  # either orientation, open or closed
        assert np.array_equal(np.intersect1d(selected, np.flatnonzero(clear)), expected)


def _ray_casting(point, vx, vy) -> bool:
    """Even–odd rule by a horizontal ray to the right, one edge at a time in plain Python."""
    x, y = point
    inside = False
    for i in range(len(vx)):
        ax, ay, bx, by = vx[i], vy[i], vx[i - 1], vy[i - 1]
        if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
            inside = not inside
    return inside


def test_a_lasso_follows_the_even_odd_rule_and_a_degenerate_one_selects_nothing():
    pentagon = np.pi / 2 + np.arange(5) * 2 * np.pi / 5
    order = [0, 2, 4, 1, 3]  # the pentagram: its centre is wound twice, each tip once
    xs, ys = list(np.cos(pentagon[order])), list(np.sin(pentagon[order]))
    coords = np.array([[0.0, 0.0], [0.0, 0.8], [0.0, -0.9]], dtype=np.float32)  # centre, top tip, below the star
    assert atlas.rows_in_lasso(coords, xs, ys).tolist() == [1]
    cloud = np.random.default_rng(2).uniform(-1, 1, (100, 2)).astype(np.float32)
    for bad_xs, bad_ys in (([], []), ([0.0, 1.0], [0.0, 1.0]), ([-1.0, 1.0, 1.0], [-1.0, -1.0]),
                           ([-1.0, 1.0, np.nan], [-1.0, -1.0, 1.0]), ([-1.0, 1.0, 1.0], [-1.0, np.inf, 1.0])):
        rows = atlas.rows_in_lasso(cloud, bad_xs, bad_ys)
        assert len(rows) == 0 and rows.dtype == np.int64


# -- density -------------------------------------------------------------------------------------------------------
def test_the_density_counts_each_point_in_view_once_in_its_cell(monkeypatch):
    # a view of dyadic edges: (x - x0) / width * bins is exact for float32 x, so the cell of every
    # point is exact here and in np.histogram2d, and the two must agree count for count
    view, bins = View(0.0, 8.0, -4.0, 4.0), 16
    rng = np.random.default_rng(3)
    cloud = np.column_stack([rng.uniform(-1, 9, 5000), rng.uniform(-5, 5, 5000)])
    edges = [[8.0, 4.0], [0.0, -4.0], [8.0, 0.0], [3.0, 4.0], [8.0, 4.5], [-1e-3, 0.0]]  # on the box, and just off it
    coords = np.vstack([cloud, edges]).astype(np.float32)
    monkeypatch.setattr(atlas, "BLOCK", 1000)  # six blocks, the last one short
    counts = atlas.density(coords, view, bins)
    reference, _, _ = np.histogram2d(coords[:, 1], coords[:, 0], bins=bins, range=[[-4, 4], [0, 8]])  # rows: y
    assert counts.shape == (bins, bins) and np.array_equal(counts, reference.astype(np.int64))
    assert counts.sum() == atlas.in_view(coords, view).sum() == atlas.shown_rows(coords, view, np.arange(len(coords)),
                                                                                   1)[1]
    assert counts[bins - 1, bins - 1] >= 1 and counts[0, 0] >= 1  # the corners (8, 4) and (0, -4)
    monkeypatch.setattr(atlas, "BLOCK", 1 << 18)
    assert np.array_equal(atlas.density(coords, view, bins), counts)  # blocks change nothing


def test_a_known_point_lands_in_its_cell_and_points_outside_are_not_counted():
    view = View(-1.0, 1.0, 10.0, 12.0)
    counts = atlas.density(np.array([[0.3, 10.1]], dtype=np.float32), view, bins=10)
    expected = np.zeros((10, 10), dtype=np.int64)
    expected[0, 6] = 1  # x: (0.3 + 1) / 2 * 10 = 6.5 -> column 6; y: (10.1 - 10) / 2 * 10 = 0.5 -> row 0
    assert np.array_equal(counts, expected)
    outside = np.array([[-1.5, 11.0], [1.5, 11.0], [0.0, 9.0], [0.0, 13.0], [np.nan, 11.0]], dtype=np.float32)
    assert atlas.density(outside, view, bins=10).sum() == 0


# -- the drawn sample ------------------------------------------------------------------------------------------------
def test_the_drawn_points_are_the_first_in_view_in_priority_order_and_zooming_keeps_them():
    rng = np.random.default_rng(4)
    coords = rng.standard_normal((20_000, 2)).astype(np.float32)
    order = atlas.priority_order(len(coords), seed=3)
    assert np.array_equal(np.sort(order), np.arange(len(coords)))
    assert np.array_equal(order, atlas.priority_order(len(coords), seed=3))
    wide, narrow, limit = View(-2.0, 2.0, -2.0, 2.0), View(-0.5, 1.0, -1.0, 0.3), 500
    samples = {}
    for view in (wide, narrow):
        x, y = coords[:, 0], coords[:, 1]
        inside = [int(r) for r in order if view.x0 <= x[r] <= view.x1 and view.y0 <= y[r] <= view.y1]
        rows, count = atlas.shown_rows(coords, view, order, limit)
        assert count == len(inside) > limit
        assert rows.tolist() == inside[:limit]
        samples[view] = set(rows.tolist())
    kept = {r for r in samples[wide] if atlas.in_view(coords[r: r + 1], narrow)[0]}
    assert kept and kept <= samples[narrow]  # zooming in keeps every point already drawn there
    tiny = View(0.0, 0.05, 0.0, 0.05)
    rows, count = atlas.shown_rows(coords, tiny, order, limit)
    assert 0 < count < limit and np.array_equal(np.sort(rows), np.flatnonzero(atlas.in_view(coords, tiny)))


def test_the_full_view_holds_every_point_with_its_padding():
    coords = np.array([[0.0, 0.0], [10.0, 20.0], [5.0, 5.0]], dtype=np.float32)
    view = atlas.full_view(coords, pad=0.03)
    assert view == View(-0.3, 10.3, -0.6, 20.6)


# -- PCA and KL of every point ---------------------------------------------------------------------------------------
def _cloud(n: int, seed: int) -> np.ndarray:
    """n points in 5-D: well separated variances (9, 1, 0.25, ...) along a random rotation, off the origin."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    return (rng.standard_normal((n, 5)) * [3.0, 1.0, 0.5, 0.2, 0.1] @ rotation + [1.0, -2.0, 0.5, 3.0, 0.0]).astype(
        np.float32)


@pytest.mark.parametrize("block", [1 << 18, 997])
def test_pca_of_every_point_is_the_svd_s(block, monkeypatch):
    points = _cloud(6000, seed=5)
    monkeypatch.setattr(atlas, "BLOCK", block)
    scores, ratio = atlas.pca_all(points)
    reference = principal_components(points)
    expected = reference.scores(points)
    assert scores.dtype == np.float32 and scores.shape == (6000, 2)
    # second moments (blocks of sums, then E[xx'] - mm') against one SVD, both in float64: with
    # eigenvalue gaps >= 0.75 and |x| ~ 4 they agree to ~1e-12 (n·eps64 accumulated); atol 1e-9
    # is that with room, rtol is the float32 rounding of the stored scores
    assert np.allclose(scores, expected, rtol=F32, atol=1e-9)
    # ratios: the same float64 disagreement, relative to a total variance ~10
    assert np.allclose(ratio, reference.explained_variance_ratio, rtol=0, atol=1e-10)


def test_pca_has_known_answers_on_a_cross_and_on_a_line():
    cross = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -0.5], [0.0, 0.5]], dtype=np.float32)
    scores, ratio = atlas.pca_all(cross)  # covariance diag(1/2, 1/8): axes e1, e2; ratios 0.8, 0.2
    assert np.array_equal(scores, cross)  # the centre is 0 exactly and the axes are ±e exactly, signed +
    assert np.allclose(ratio, [0.8, 0.2], rtol=0, atol=4e-16)  # 2 ulps of 0.8 in float64
    line = np.array([[1.0], [2.0], [4.0], [9.0]], dtype=np.float32)  # a 1-D latent
    scores, ratio = atlas.pca_all(line)
    assert np.array_equal(scores[:, 0], line[:, 0] - 4.0) and np.array_equal(scores[:, 1], np.zeros(4))
    assert ratio.tolist() == [1.0, 0.0]


def test_kl_of_every_point_is_the_closed_form(monkeypatch, tmp_path):
    rng = np.random.default_rng(6)
    mean = rng.normal(0, 1.5, (3001, 8)).astype(np.float32)
    log_var = rng.normal(-1, 1, (3001, 8)).astype(np.float32)
    np.save(tmp_path / "mean.npy", mean)
    np.save(tmp_path / "log_var.npy", log_var)
    monkeypatch.setattr(atlas, "BLOCK", 1000)  # four blocks, over memory maps
    kl = atlas.kl_per_point(np.load(tmp_path / "mean.npy", mmap_mode="r"), np.load(tmp_path / "log_var.npy",
                                                                                     mmap_mode="r"))
    m, v = mean.astype(np.float64), log_var.astype(np.float64)
    closed_form = 0.5 * (m ** 2 + np.exp(v) - 1.0 - v).sum(1)
    # the output is float32 (rtol); the two float64 sums differ only in the order of their terms, a
    # few eps64 of the terms' sizes (~10 here), so ~1e-14 absolute: atol 1e-12 is that with room
    assert kl.dtype == np.float32 and np.allclose(kl, closed_form, rtol=F32, atol=1e-12)
    gaussian = DiagonalGaussian(torch.from_numpy(m), torch.from_numpy(np.exp(0.5 * v)))
    # the model's form goes through std and log(std²): a few eps64 per term, ~1e-15 absolute at these sizes
    assert np.allclose(kl, gaussian.kl_standard_normal().numpy(), rtol=F32, atol=1e-12)
    # known answers: N(0, I) is the prior itself; a unit shift in each of 8 dimensions costs 8/2 nats
    assert atlas.kl_per_point(np.zeros((2, 8)), np.zeros((2, 8))).tolist() == [0.0, 0.0]
    assert atlas.kl_per_point(np.ones((1, 8)), np.zeros((1, 8))).tolist() == [4.0]


# -- projections stored beside the encodings ---------------------------------------------------------------------------
def test_pca_is_stored_beside_the_encodings_and_read_back(tmp_path):
    means = _cloud(2000, seed=9)
    first = atlas.atlas_projection(tmp_path, means, "pca")
    assert not first.from_cache and first.method == "pca"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["projection-pca-0.json", "projection-pca-0.npy"]
    scores, ratio = atlas.pca_all(means)
    assert np.array_equal(first.coords, scores) and first.explained == tuple(ratio.tolist())
    meta = json.loads((tmp_path / "projection-pca-0.json").read_text())
    assert meta["n"] == 2000 and meta["explained"] == ratio.tolist()
    second = atlas.atlas_projection(tmp_path, means, "pca")
    assert second.from_cache and np.array_equal(second.coords, first.coords) and second.explained == first.explained
    assert not second.coords.flags.writeable  # a read-only memory map of the stored file


@pytest.mark.parametrize("stored", ["wrong shape", "wrong dtype", "another n", "no json"])
def test_a_stored_projection_that_does_not_fit_is_computed_again(stored, tmp_path):
    means = _cloud(500, seed=10)
    path = tmp_path / "projection-pca-0.npy"
    coords = {"wrong shape": np.zeros((500, 3), np.float32), "wrong dtype": np.zeros((500, 2), np.float64)}.get(
        stored, np.zeros((500, 2), np.float32))
    np.save(path, coords)
    if stored != "no json":
        path.with_suffix(".json").write_text(json.dumps({"n": 499 if stored == "another n" else 500, "note": ""}))
    again = atlas.atlas_projection(tmp_path, means, "pca")
    assert not again.from_cache and np.array_equal(again.coords, atlas.pca_all(means)[0])
    assert atlas.atlas_projection(tmp_path, means, "pca").from_cache  # and the stored file is now whole
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_the_latent_plane_is_the_first_two_means_and_is_not_stored(tmp_path):
    means = _cloud(50, seed=11)
    plane = atlas.atlas_projection(tmp_path, means, "latent")
    assert np.array_equal(plane.coords, means[:, :2]) and list(tmp_path.iterdir()) == []
    with pytest.raises(AtlasError, match="unknown projection"):
        atlas.atlas_projection(tmp_path, means, "isomap")


def test_tsne_over_its_limit_is_refused_and_stores_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(atlas, "TSNE_MAX_POINTS", 40)
    with pytest.raises(AtlasError, match="t-SNE is offered up to 40 points"):
        atlas.atlas_projection(tmp_path, _cloud(41, seed=12), "tsne")
    assert list(tmp_path.iterdir()) == []


def test_umap_s_note_is_stored_and_read_back(tmp_path, monkeypatch):
    means = _cloud(30, seed=13)
    made = np.arange(60, dtype=np.float32).reshape(30, 2)
    monkeypatch.setattr(atlas, "umap_sampled", lambda points, seed, report: (made, f"note for seed {seed}"))
    first = atlas.atlas_projection(tmp_path, means, "umap", seed=4)
    second = atlas.atlas_projection(tmp_path, means, "umap", seed=4)
    assert (tmp_path / "projection-umap-4.npy").is_file() and second.from_cache
    assert second.note == first.note == "note for seed 4" and np.array_equal(second.coords, made)


def test_umap_places_its_fit_where_it_fitted_them_and_every_other_point_from_its_nearest_fitted(monkeypatch):
    import umap

    fits = []

    class Recording(umap.UMAP):
        def fit_transform(self, X, *args, **kwargs):
            out = super().fit_transform(X, *args, **kwargs)
            fits.append((np.array(X), np.array(out)))
            return out

    monkeypatch.setattr(umap, "UMAP", Recording)
    rng = np.random.default_rng(14)
    cluster = np.repeat([0, 1], 300)
    points = (rng.standard_normal((600, 5)) + 20.0 * cluster[:, None]).astype(np.float32)  # two far clouds
    coords, note = atlas.umap_sampled(points, seed=0, fit_sample=200, chunk=150, k=10)
    assert coords.shape == (600, 2) and np.all(np.isfinite(coords))
    row_of = {row.tobytes(): i for i, row in enumerate(points)}
    (fit_input, fit_output), = fits
    fitted = np.array([row_of[row.tobytes()] for row in fit_input])
    assert len(set(fitted.tolist())) == 200
    assert np.array_equal(coords[fitted], fit_output.astype(np.float32))
    rest = np.array(sorted(set(range(600)) - set(fitted.tolist())))
    # each other point: the inverse-distance-weighted mean of its 10 nearest fitted points' places,
    # recomputed by brute force in float64 (the page's k-d tree works in float32: relative 1e-5)
    gaps = np.sqrt(((points[rest, None, :].astype(np.float64) - points[fitted][None].astype(np.float64)) ** 2).sum(-1))
    nearest = np.argsort(gaps, axis=1)[:, :10]
    weights = 1.0 / np.take_along_axis(gaps, nearest, 1)
    expected = (weights[..., None] * fit_output[nearest].astype(np.float64)).sum(1) / weights.sum(1, keepdims=True)
    assert np.allclose(coords[rest], expected, rtol=1e-4, atol=1e-4 * np.abs(fit_output).max())
    assert note == ("UMAP fitted on a random 200 of the 600 points; each of the other 400 is placed at the "
                    "distance-weighted mean of its 10 nearest fitted points (in latent space).")
    # a placed point's nearest fitted point is from its own cloud (the clouds are 20 standard deviations apart)
    closest = np.argmin(((coords[rest][:, None] - coords[fitted][None]) ** 2).sum(-1), axis=1)
    assert np.array_equal(cluster[fitted][closest], cluster[rest])


# -- text from a URL and from the server's folders ---------------------------------------------------------------------
def test_a_view_text_is_parsed_or_refused():
    for hostile in ("nan,1,0,1", "1,0,0,1", "0,1,1,1", "a,b,c,d", "1,2,3", "1,2,3,4,5", "inf,1,0,1", "0,1,-inf,1",
                    "1e999,2e999,0,1", "", None, "0,1;0,1", "0x1,2,0,1"):
        assert View.parse(hostile) is None, hostile
    view = View(-1.5, 2.25, -3e-7, 0.125)  # numbers of six significant digits come back exactly
    assert view.text() == "-1.5,2.25,-3e-07,0.125" and View.parse(view.text()) == view
    rounded = View.parse(View(0.1234567891, 1.0, 0.0, 1.0).text())  # six significant digits in a URL
    assert rounded == View(0.123457, 1.0, 0.0, 1.0) and View.parse(rounded.text()) == rounded


def test_the_server_offers_data_files_directly_in_its_folders_only(tmp_path):
    root, outside = tmp_path / "shared-data", tmp_path / "private"
    (root / "nested").mkdir(parents=True)
    outside.mkdir()
    for name in ("a.npy", "b.csv", "C.NPZ", "d.parquet", "notes.txt", "model.safetensors", "nested/deep.npy"):
        (root / name).write_bytes(b"x")
    (root / "folder.npy").mkdir()  # a folder named like data
    (outside / "secret.npy").write_bytes(b"x")
    (root / "link.npy").symlink_to(outside / "secret.npy")
    (root / "alias.csv").symlink_to(root / "b.csv")
    files = atlas.server_files([root, tmp_path / "missing"])
    assert files == {f"shared-data/{name}": root / name for name in ("C.NPZ", "a.npy", "b.csv", "d.parquet")}


def test_generated_shapes_are_offered_for_a_shapes_model_of_1024_features_only():
    files = {"shared-data/a.npy": None}
    sources = atlas.atlas_sources("shapes", 32 * 32, files)
    assert sources == {"test": "the model's test set", "shapes-10000": "generated shapes, 10,000 items",
                       "shapes-100000": "generated shapes, 100,000 items",
                       "shapes-1000000": "generated shapes, 1,000,000 items", "file:shared-data/a.npy": "shared-data/a.npy"}
    for name, features in (("shapes", 64 * 64), ("mnist", 32 * 32), ("mnist", 784)):
        assert set(atlas.atlas_sources(name, features, files)) == {"test", "file:shared-data/a.npy"}


def test_the_density_grid_grows_with_the_points_between_its_bounds():
    assert [atlas.density_bins(n) for n in (1, 480, 10_000, 100_000, 1_000_000)] == [24, 24, 60, 190, 200]


def test_a_selection_text_is_parsed_once_and_selects_over_every_point():
    coords = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.5, 1.5]], dtype=np.float32)
    box = atlas.parse_selection("box:-0.5,1.2,-0.5,1.2")
    assert box == atlas.Selection("box", box=(-0.5, 1.2, -0.5, 1.2))
    assert atlas.selection_rows(box, coords).tolist() == [0, 1]
    lasso = atlas.parse_selection("lasso:-1 -1;3 -1;3 3")  # the triangle below the diagonal y = x
    assert atlas.selection_rows(lasso, coords).tolist() == atlas.rows_in_lasso(coords, [-1, 3, 3], [-1, -1, 3]).tolist()
    assert atlas.selection_rows(atlas.parse_selection("rows:3,-1,9,0"), coords).tolist() == [3, 0]  # existing rows
    for hostile in ("box:1,2,3", "box:nan,1,2,3", "box:1e999,1,2,3", "lasso:0 0;1 1", "lasso:0 0;1 x;2 2",
                    "lasso:" + ";".join(["1e999 0"] * 5), "rows:1,a", "x:1", "", None):
        assert atlas.parse_selection(hostile) is None, hostile
        assert atlas.selection_rows(atlas.parse_selection(hostile), coords).tolist() == []
