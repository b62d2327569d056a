import numpy as np
import torch

from vizvae.viz.figures import kl_figure, posterior_figure, projection_figure, training_curves_figure
from vizvae.inference.latent import traversal_latents
from vizvae.viz.tables import (
    evaluation_table, history_table, interpolation_table, posterior_table, projection_table, traversal_table,
)


def test_projection_figure_carries_index_and_label_for_hover_and_selection():
    coords = np.arange(10, dtype=float).reshape(5, 2)
    fig = projection_figure(coords, labels=np.array([0, 1, 2, 1, 0]), label_names=["a", "b", "c"], selected=[3])
    points = fig.data[0]
    assert list(points.x) == [0, 2, 4, 6, 8]
    assert [tuple(c) for c in points.customdata] == [(0, "a"), (1, "b"), (2, "c"), (3, "b"), (4, "a")]
    assert "index" in points.hovertemplate and "label" in points.hovertemplate
    ring = fig.data[1]
    assert list(ring.x) == [6] and ring.hoverinfo == "skip"


def test_training_curves_have_loss_train_and_test_elbo():
    history = {"step": [10, 20], "loss": [5.0, 4.0], "train_elbo": [-5.0, -4.0], "eval_step": [20], "test_elbo": [-4.5]}
    fig = training_curves_figure(history)
    assert [t.name for t in fig.data] == ["loss", "train ELBO", "test ELBO"]
    assert list(fig.data[2].x) == [20]
    table = history_table(history)
    assert list(table.columns) == ["step", "loss", "train_elbo", "test_elbo"]
    assert np.isnan(table.test_elbo[0]) and table.test_elbo[1] == -4.5


def test_posterior_figure_has_std_error_bars():
    fig = posterior_figure(np.array([0.5, -1.0]), np.array([0.1, 0.2]))
    assert list(fig.data[0].error_y.array) == [0.1, 0.2] and list(fig.data[0].x) == ["z0", "z1"]
    assert list(kl_figure(np.array([1.0, 0.0])).data[0].y) == [1.0, 0.0]


def test_tables():
    table = evaluation_table({"test_elbo": -90.0, "n_test": 1000, "imputation_seeds": [0, 1, 2], "sampler": "HMC"})
    assert table.values.tolist() == [["test ELBO (nats)", "-90.0"], ["test rows", "1000"],
                                     ["imputation_seeds", "0, 1, 2"], ["sampler", "HMC"]]
    import pyarrow as pa

    pa.Table.from_pandas(table)  # what st.table hands to the browser: a mixed column would not convert
    assert projection_table(np.zeros((3, 2)), ["1", "2", "3"], "pca").columns.tolist() == ["index", "label", "pca_1", "pca_2"]
    table = posterior_table([7], np.array([[0.1, 0.2]]), np.array([[1.0, 2.0]]))
    assert table.values.tolist() == [[7, 0, 0.1, 1.0], [7, 1, 0.2, 2.0]]
    grid = traversal_latents(torch.zeros(3), [2, 0], torch.tensor([-1.0, 1.0])).numpy()
    table = traversal_table(grid, [2, 0])
    assert table.varied_dimension.tolist() == [2, 2, 0, 0] and table.value.tolist() == [-1, 1, -1, 1]
    assert table.z2.tolist() == [-1, 1, 0, 0]


def test_interpolation_table_runs_from_t0_to_t1():
    table = interpolation_table({"linear": np.array([[0.0, 0.0], [1.0, 2.0]])})
    assert table.t.tolist() == [0.0, 1.0] and table.z1.tolist() == [0.0, 2.0]
