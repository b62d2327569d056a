import io

import numpy as np
import pytest
from PIL import Image

from vizvae.viz.disentanglement import (
    labelled_grid, latent_row_labels, metrics_against_beta_figure, metrics_table, mutual_information_heatmap,
    traversal_gif, traversal_png,
)


def _traversal(rows=2, columns=5):
    """(rows, columns, 4·4) images whose brightness is the column index / (columns − 1)."""
    values = np.linspace(0.0, 1.0, columns)
    return np.broadcast_to(values[None, :, None], (rows, columns, 16)).copy()


def test_row_labels_name_the_factor_each_latent_carries():
    labels = latent_row_labels([2, 0, 1], best_factor=[0, 1, 1], best_value=[0.91, 0.5, 0.2],
                               factor_names=["x", "y"], average_kl=[3.0, 0.001, 1.5])
    assert labels == ["z2 · y (0.20)", "z0 · x (0.91)", "z1 · inactive"]


def test_labelled_grid_keeps_the_images_right_of_the_labels():
    canvas = labelled_grid(_traversal(), (1, 4, 4), ["z0 · x (0.90)", "z1 · y (0.80)"], scale=2, gutter=1)
    # the image grid (2 rows, 5 columns of 4x4, gutter 1, scale 2) sits at the right edge
    grid_height, grid_width = (2 * 5 + 1) * 2, (5 * 5 + 1) * 2
    assert canvas.shape[0] == grid_height and canvas.shape[1] > grid_width
    right = canvas[:, -grid_width:]
    assert right[2, 2] == 0 and right[2, -3] == 255  # first column black, last column white
    assert (canvas[:, : canvas.shape[1] - grid_width] < 128).any()  # some text was drawn
    with pytest.raises(ValueError, match="row labels"):
        labelled_grid(_traversal(), (1, 4, 4), ["only one"])


def test_gif_plays_the_columns_forwards_then_backwards():
    data = traversal_gif(_traversal(columns=5), (1, 4, 4), ["a", "b"], values=np.linspace(-2, 2, 5), frame_ms=50)
    assert data[:6] == b"GIF89a"
    gif = Image.open(io.BytesIO(data))
    assert gif.n_frames == 5 + 3  # 0 1 2 3 4 3 2 1, then it loops
    assert gif.info["loop"] == 0 and gif.info["duration"] == 50
    brightness = []
    for frame in range(gif.n_frames):
        gif.seek(frame)
        pixels = np.asarray(gif.convert("L"))
        brightness.append(int(pixels[-4, -4]))  # inside the bottom row's image
    assert brightness == sorted(brightness[:5]) + sorted(brightness[1:4], reverse=True)
    assert brightness[0] < brightness[4]


def test_png_export_is_a_png():
    assert traversal_png(_traversal(), (1, 4, 4), ["a", "b"], values=[-1, -0.5, 0, 0.5, 1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_heatmap_puts_factors_on_rows_and_latents_in_the_given_order():
    mi = np.array([[0.9, 0.0], [0.1, 0.0], [0.0, 0.7]])  # (latents, factors)
    fig = mutual_information_heatmap(mi, ["x", "y"], latent_order=[2, 0, 1], mig_per_factor=[0.8, 0.7], inactive=[1])
    heatmap = fig.data[0]
    assert list(heatmap.x) == ["z2", "z0", "<span style='color:#b0b0b0'>z1</span>"]  # inactive: greyed
    assert list(heatmap.y) == ["x · gap 0.80", "y · gap 0.70"]
    assert np.allclose(heatmap.z, [[0.0, 0.9, 0.1], [0.7, 0.0, 0.0]])


def test_beta_figure_and_table_sort_and_label():
    fig = metrics_against_beta_figure([10, 1, 4], {"MIG": [0.3, 0.1, 0.2]})
    assert list(fig.data[0].x) == [1.0, 4.0, 10.0] and list(fig.data[0].y) == [0.1, 0.2, 0.3]
    table = metrics_table([{"name": "m", "beta": 4.0, "mig": 0.2, "active_units": 5}])
    assert table.loc[0, "MIG"] == 0.2 and table.loc[0, "active units"] == 5
    assert table.loc[0, "DCI completeness"] is None  # not measured: left empty
    assert table.loc[0, "KL weight β"] == "4"
    assert metrics_table([{"name": "ug", "beta": None}]).loc[0, "KL weight β"] == "— (none)"  # a UG-VAE
