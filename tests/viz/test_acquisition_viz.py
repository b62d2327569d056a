"""Figures and tables of the Acquisition page: raw units come out right, the acquired feature is the one
highlighted, the true value sits where it is, and the Fig. 5.5 curves carry the cached numbers."""

import numpy as np

from vizvae.evaluation.acquisition_view import acquisition_order, raw_step
from vizvae.viz.acquisition import (
    ACQUIRED_COLOUR, CANDIDATE_COLOUR, OBSERVED_COLOUR, TRUTH_COLOUR, acquisition_order_table, class_probability_figure,
    format_value, imputation_figure, imputation_table, revealed_value, reward_figure, saia_areas_table,
    saia_curves_figure, strategy_comparison_figure, target_histogram_figure,
)
from tests.evaluation.acquisition_run import NAN, RUN_SCHEMA, RUN_TARGET, hand_written_run


def test_values_are_formatted_as_the_page_shows_them():
    assert format_value(4.7e-8) == "0" and format_value(24.0, discrete=True) == "24" and format_value(NAN) == "?"
    assert format_value(1234.5678) == "1235"
    truth = np.array([12.0, 3.0, 24.0])
    assert revealed_value(truth, 2, RUN_SCHEMA) == "24" and revealed_value(truth, 0, RUN_SCHEMA) == "12"
    assert revealed_value(truth, -1, RUN_SCHEMA) is None  # step 0 has revealed nothing


def test_reward_figure_highlights_the_acquired_bar_and_reveals_its_value():
    names = ["a", "b", "c", "d"]
    observed = np.array([True, False, True, False])
    fig = reward_figure(names, np.array([NAN, 0.3, 0.7, 0.1]), acquired=2, observed=observed, revealed="5.5",
                        reward_label="MI")
    bars = fig.data[0]
    assert list(bars.x) == ["b", "c", "d"] and np.allclose(bars.y, [0.3, 0.7, 0.1])
    assert list(bars.marker.color) == [CANDIDATE_COLOUR, ACQUIRED_COLOUR, CANDIDATE_COLOUR]
    (note,) = fig.layout.annotations
    assert note.text == "c = 5.5" and note.x == "c" and note.y == 0.7
    earlier = fig.data[1]
    assert earlier.name == "observed earlier" and list(earlier.x) == ["a"]  # c is this step's, not earlier
    assert list(fig.layout.xaxis.categoryarray) == names  # bars keep their places between steps
    before = reward_figure(names, np.array([0.2, 0.3, 0.7, 0.1]))
    assert set(before.data[0].marker.color) == {CANDIDATE_COLOUR} and not before.layout.annotations


def test_target_histogram_marks_the_truth_and_narrows_on_fixed_bins():
    rng = np.random.default_rng(0)
    wide = target_histogram_figure(rng.normal(0, 2, 500), (-10, 10), truth=1.5, prediction=0.5, bins=20)
    narrow = target_histogram_figure(rng.normal(1.5, 0.3, 500), (-10, 10), truth=1.5, bins=20)
    truth = next(t for t in wide.data if t.name.startswith("true value"))
    assert list(truth.x) == [1.5, 1.5] and truth.line.color == TRUTH_COLOUR
    assert any(t.name.startswith("prediction") and list(t.x) == [0.5, 0.5] for t in wide.data)
    bars_wide, bars_narrow = wide.data[0], narrow.data[0]
    assert np.allclose(bars_wide.x, bars_narrow.x)  # the same bins at every step
    assert np.isclose(np.sum(np.asarray(bars_wide.y) * np.asarray(bars_wide.width)), 1.0)  # a density
    assert max(bars_narrow.y) > 2 * max(bars_wide.y)
    assert list(wide.layout.xaxis.range) == [-10, 10]
    point = target_histogram_figure(np.full(10, 3.2), (0, 4), bins=4)  # all draws in one bin of width 1
    assert np.allclose(point.data[0].y, [0, 0, 0, 1.0])
    assert len(point.data) == 1  # no truth, no prediction: no lines


def test_class_probabilities_for_a_label():
    fig = class_probability_figure(["0", "1", "2"], np.array([0.2, 0.7, 0.1]), truth=0, prediction=1)
    bars = fig.data[0]
    assert list(bars.marker.color)[0] == TRUTH_COLOUR and list(bars.text) == ["true", "predicted", ""]
    assert list(fig.layout.yaxis.range)[0] == 0


def test_imputation_figure_draws_intervals_for_missing_features_only():
    names = ["height", "income", "zone"]
    ranges = np.array([[0.0, 20.0], [0.0, 10.0], [1.0, 24.0]])
    fig = imputation_figure(names, centre=np.array([11.0, 3.0, 24.0]), low=np.array([8.0, 1.0, 24.0]),
                            high=np.array([14.0, 6.0, 24.0]), observed=np.array([False, False, True]), ranges=ranges,
                            truth=np.array([12.5, 2.0, 24.0]), acquired=2, columns=2)
    by_feature = {}
    for trace in fig.data:
        by_feature.setdefault(trace.meta, {})[trace.name] = trace
    assert set(by_feature["height"]) == {"5–95 % interval", "imputed (mean)", "true value (hidden)"}
    assert list(by_feature["height"]["5–95 % interval"].x) == [8.0, 14.0]
    assert list(by_feature["height"]["true value (hidden)"].x) == [12.5]
    zone = by_feature["zone"]
    assert set(zone) == {"acquired this step"} and zone["acquired this step"].marker.color == ACQUIRED_COLOUR
    assert list(fig.layout.xaxis.range) == [0.0, 20.0] and list(fig.layout.xaxis3.range) == [1.0, 24.0]
    assert [a.text for a in fig.layout.annotations] == ["height", "income", "zone ✓"]
    assert sum(t.showlegend for t in fig.data) == 4  # each kind of mark once in the legend
    observed = imputation_figure(names, np.zeros(3), np.zeros(3), np.zeros(3), np.array([True, True, False]), ranges)
    assert {t.marker.color for t in observed.data if t.meta in ("height", "income")} == {OBSERVED_COLOUR}


def test_imputation_table_says_when_each_feature_was_acquired():
    run = hand_written_run()
    step = raw_step(run, 2, RUN_SCHEMA, RUN_TARGET)
    table = imputation_table([c.name for c in RUN_SCHEMA], [c.kind for c in RUN_SCHEMA], step, acquisition_order(run),
                             truth=np.array([12.0, 3.0, 24.0]))
    assert list(table["status"]) == ["acquired at step 2", "missing", "acquired at step 1"]
    assert table.loc[1, "5–95 %"] == "0 – 2.32" and table.loc[0, "5–95 %"] == ""  # expm1(0.2 ± 1), clipped at 0
    assert list(table["true value"]) == ["12", "3", "24"]


def test_strategy_comparison_and_orders():
    labels = {"mi": "MI", "kl": "KL", "random": "random"}
    errors = {"mi": np.array([3.0, 1.0, 0.5]), "kl": np.array([3.0, 2.0, 0.5]), "random": np.array([3.0, 2.5, 0.5])}
    nlls = {k: v / 2 for k, v in errors.items()}
    fig = strategy_comparison_figure(errors, nlls, labels, current_step=1)
    assert [t.name for t in fig.data] == ["MI", "KL", "random"] * 2
    assert np.allclose(fig.data[1].y, [3.0, 2.0, 0.5]) and np.allclose(fig.data[4].y, [1.5, 1.0, 0.25])
    assert [t.showlegend for t in fig.data] == [True] * 3 + [False] * 3
    table = acquisition_order_table({"mi": [2, 0, 1], "random": [1]}, ["a", "b", "c"], labels)
    assert list(table.columns) == ["step", "MI", "random"]
    assert list(table["MI"]) == ["c", "a", "b"] and list(table["random"]) == ["b", "", ""]


def test_saia_curves_carry_the_cached_means_and_standard_errors():
    labels = {"mi": "MI", "kl": "KL", "random": "random"}
    curves = {"m1": {"mi": [0.8, 0.4, 0.2], "kl": [0.8, 0.5, 0.2]}, "m2": {"mi": [0.9, 0.3, 0.25]}}
    se = {"m1": {"mi": [0.1, 0.05, 0.02], "kl": [0.1, 0.1, 0.1]}, "m2": {}}
    fig = saia_curves_figure(curves, se, ["mi", "kl"], labels, "error")
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [(t.name, t.xaxis) for t in lines] == [("m1", "x"), ("m1", "x2"), ("m2", "x")]
    assert np.allclose(lines[0].y, [0.8, 0.4, 0.2]) and list(lines[0].x) == [0, 1, 2]
    band = next(t for t in fig.data if t.name == "m1 ± s.e." and t.xaxis == "x")
    assert np.allclose(band.y[:3], [0.9, 0.45, 0.22]) and np.allclose(band.y[3:], [0.18, 0.35, 0.7])
    assert not any(t.name == "m2 ± s.e." for t in fig.data)  # no s.e. cached: no band
    assert [a.text for a in fig.layout.annotations] == ["MI", "KL"]
    assert [t.showlegend for t in lines] == [True, False, True]
    areas = saia_areas_table({"m1": {"rows": 101, "options": {"samples": 100}, "areas": {"mi": 3.8, "kl": 4.0}}},
                             ["mi", "kl", "random"], labels)
    assert areas.iloc[0].to_dict() == {"model": "m1", "test rows": 101, "draws per step": 100, "area, MI": 3.8,
                                       "area, KL": 4.0, "area, random": None}
