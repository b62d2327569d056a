import numpy as np
import pytest
import torch

from vizvae.viz.figures import kl_figure, posterior_figure, projection_figure
from vizvae.inference.latent import traversal_latents
from vizvae.viz.tables import (
    evaluation_caption, evaluation_table, history_table, interpolation_table, posterior_table, projection_table, traversal_table,
)


def test_projection_figure_carries_index_and_label_for_hover_and_selection():
    coords = np.arange(10, dtype=float).reshape(5, 2)
    fig = projection_figure(coords, labels=np.array([0, 1, 2, 1, 0]), label_names=["a", "b", "c"], selected=[3])
    points = fig.data[0]
    assert list(points.x) == [0, 2, 4, 6, 8]
    assert [tuple(c) for c in points.customdata] == [(0, "a"), (1, "b"), (2, "c"), (3, "b"), (4, "a")]
    assert "index" in points.hovertemplate and "label" in points.hovertemplate
    # the selection is plotly's own (one trace, whatever is selected), so a click never redraws the figure
    assert len(fig.data) == 1 and list(points.selectedpoints) == [3]
    assert projection_figure(coords).data[0].selectedpoints is None


def test_training_curves_have_loss_train_and_test_elbo_at_their_coordinates():
    from xml.etree import ElementTree

    from vizvae.viz.svg import training_curves_svg

    history = {"step": [10, 20, 30], "loss": [5.0, 4.0, 3.0], "train_elbo": [-5.0, -4.0, -3.5], "eval_step": [20],
               "test_elbo": [-4.5]}
    root = ElementTree.fromstring(training_curves_svg(history, width=900, height=300))
    lines = {e.get("data-name"): [tuple(map(float, p.split(","))) for p in e.get("points").split()]
             for e in root.iter("{http://www.w3.org/2000/svg}polyline")}
    assert list(lines) == ["loss", "train ELBO", "test ELBO"]
    # the loss panel spans x 70..435 and y 30..240: the largest loss at the top left, the smallest bottom right
    assert lines["loss"] == [(70.0, 30.0), (252.5, 135.0), (435.0, 240.0)]
    # one ELBO panel, one scale for both series: y from -5 (bottom) to -3.5 (top); the test point at step 20
    (test_point,) = lines["test ELBO"]
    assert test_point == pytest.approx((515 + 365 / 2, 30 + 210 * (1 - 0.5 / 1.5)), abs=0.06)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "loss (minimised)" in texts and "ELBO (nats, higher is better)" in texts and "test ELBO" in texts
    table = history_table(history)
    assert list(table.columns) == ["step", "loss", "train_elbo", "test_elbo"]
    assert np.isnan(table.test_elbo[0]) and table.test_elbo[1] == -4.5


def test_training_curves_skip_non_finite_values_and_escape_names():
    from xml.etree import ElementTree

    from vizvae.viz.svg import Panel, Series, panel_svg

    svg = "<svg xmlns='http://www.w3.org/2000/svg'>" + "".join(panel_svg(
        "<b>", [Series("a&b", [0, 1, 2], [1.0, float("nan"), 3.0])], Panel(0, 0, 100, 50), "step")) + "</svg>"
    root = ElementTree.fromstring(svg)
    (line,) = root.iter("{http://www.w3.org/2000/svg}polyline")
    assert line.get("data-name") == "a&b" and line.get("points") == "0.0,50.0 100.0,0.0"
    assert [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")][0] == "<b>"


def test_posterior_figure_has_std_error_bars():
    fig = posterior_figure(np.array([0.5, -1.0]), np.array([0.1, 0.2]))
    assert list(fig.data[0].error_y.array) == [0.1, 0.2] and list(fig.data[0].x) == ["z0", "z1"]
    assert list(kl_figure(np.array([1.0, 0.0])).data[0].y) == [1.0, 0.0]


def test_tables():
    table = evaluation_table({"test_elbo": -90.0, "n_test": 1000, "imputation_seeds": [0, 1, 2], "sampler": "HMC"})
    assert table.values.tolist() == [["test ELBO (nats)", "-90.0"], ["test rows", "1000"],
                                     ["imputation: mask seeds", "0, 1, 2"], ["sampler", "HMC"]]
    import pyarrow as pa

    pa.Table.from_pandas(table)  # what st.table hands to the browser: a mixed column would not convert
    assert projection_table(np.zeros((3, 2)), ["1", "2", "3"], "pca").columns.tolist() == ["index", "label", "pca_1", "pca_2"]
    table = posterior_table([7], np.array([[0.1, 0.2]]), np.array([[1.0, 2.0]]))
    assert table.values.tolist() == [[7, 0, 0.1, 1.0], [7, 1, 0.2, 2.0]]
    grid = traversal_latents(torch.zeros(3), [2, 0], torch.tensor([-1.0, 1.0])).numpy()
    table = traversal_table(grid, [2, 0])
    assert table.varied_dimension.tolist() == [2, 2, 0, 0] and table.value.tolist() == [-1, 1, -1, 1]
    assert table.z2.tolist() == [-1, 1, 0, 0]


def test_a_table_models_evaluation_reads_in_words_with_its_spread_on_one_row():
    evaluation = {"test_elbo": -11.449, "n_test": 101, "missing_nll": 0.9553, "missing_nll_std": 0.0627,
                  "target_nll": 0.5586, "target_nll_std": 0.0674, "imputation_rows": 101, "imputation_samples": 100,
                  "imputation_seeds": [0, 1, 2, 3, 4], "imputation_sampler": "Gaussian encoder"}
    table = evaluation_table(evaluation, "feature")
    rows = dict(table.values.tolist())
    assert rows["NLL of the missing entries (nats per missing feature)"] == "0.9553 ± 0.0627"
    assert rows["NLL of the target, −log p(y | x_O)"] == "0.5586 ± 0.0674"
    assert rows["imputation: posterior sampler"] == "Gaussian encoder" and len(rows) == 8  # the stds folded in
    assert not set(rows) & set(evaluation)  # no raw snake_case key reaches the page
    caption = evaluation_caption(evaluation, "feature")
    assert "lower bounds on log p(x)" in caption and "each feature hidden with probability 0.5" in caption
    assert "over 5 mask seeds" in caption
    assert "Imputation" not in evaluation_caption({"test_elbo": -90.0})
    assert "bounds" not in evaluation_caption({"missing_nll": 0.2, "imputation_rows": 500, "imputation_seeds": [0]})


def test_interpolation_table_runs_from_t0_to_t1():
    table = interpolation_table({"linear": np.array([[0.0, 0.0], [1.0, 2.0]])})
    assert table.t.tolist() == [0.0, 1.0] and table.z1.tolist() == [0.0, 2.0]


def test_a_change_that_rounds_to_zero_is_not_shown():
    from vizvae.viz.tables import shown_change

    assert shown_change(-0.004) is None and shown_change(0.0) is None  # never a red "-0.00"
    assert shown_change(0.123) == "+0.12" and shown_change(-0.006) == "-0.01"
    assert shown_change(0.0004, 3) is None and shown_change(0.0006, 3) == "+0.001"


def test_subplot_grid_places_panels_where_make_subplots_does():
    import pytest
    from plotly.subplots import make_subplots

    from vizvae.viz.figures import panel_axes, subplot_grid

    titles = [f"z{i}" for i in range(11)]  # 3 rows of 4, the last row short
    ours = subplot_grid(3, 4, titles, horizontal_spacing=0.04, vertical_spacing=0.05)
    theirs = make_subplots(rows=3, cols=4, subplot_titles=titles, horizontal_spacing=0.04,
                           vertical_spacing=0.05).layout
    for i in range(11):
        x, y = panel_axes(i)["xaxis"][1:], panel_axes(i)["yaxis"][1:]
        assert ours[f"xaxis{x}"]["domain"] == pytest.approx(list(theirs[f"xaxis{x}"].domain), abs=1e-9)
        assert ours[f"yaxis{y}"]["domain"] == pytest.approx(list(theirs[f"yaxis{y}"].domain), abs=1e-9)
        assert ours[f"xaxis{x}"]["anchor"] == theirs[f"xaxis{x}"].anchor
    assert [a["text"] for a in ours["annotations"]] == [a.text for a in theirs.annotations]
    assert [a["x"] for a in ours["annotations"]] == pytest.approx([a.x for a in theirs.annotations])
