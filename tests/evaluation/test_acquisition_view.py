"""One row of a table as the acquisition page holds it: model space and raw units, what can be acquired;
each step of a run in raw units, its errors, and the fixed axis ranges the figures are drawn on."""

from __future__ import annotations

import numpy as np
import pytest

from vizvae.data.schema import ColumnType, table_to_raw
from vizvae.evaluation.acquisition_view import (
    acquisition_order, acquisition_row, class_frequencies, feature_ranges, raw_errors, raw_step, target_range,
)

from tests.evaluation.acquisition_run import RUN_LABEL, NAN, RUN_SCHEMA, RUN_TARGET, hand_written_run

SCHEMA = [ColumnType("height", "gaussian", mean=170.0, std=10.0), ColumnType("smoker", "bernoulli", [0.0, 1.0]),
          ColumnType("income", "loggaussian", mean=1.0, std=0.5)]
TARGET = ColumnType("weight", "gaussian", mean=70.0, std=5.0)


def test_a_row_maps_back_to_raw_units_and_knows_what_can_be_acquired():
    row = acquisition_row(np.array([1.0, np.nan, 0.0]), 2.0, SCHEMA, TARGET, "test row 0")
    assert row.available.tolist() == [True, False, True] and row.n_acquirable == 2
    assert row.truth_raw[0] == pytest.approx(180.0)  # 170 + 1 · 10
    assert np.isnan(row.truth_raw[1]) and np.isnan(row.x[1])
    assert row.truth_raw[2] == pytest.approx(np.expm1(1.0))  # log1p(income) standardised: mean 1, value 0 σ
    assert row.y == 2.0 and row.y_raw == pytest.approx(80.0)  # 70 + 2 · 5
    assert row.target_error(77.5) == pytest.approx(2.5)


def test_an_unknown_target_has_no_error_and_an_empty_row_nothing_to_acquire():
    row = acquisition_row(np.full(3, np.nan), float("nan"), SCHEMA, TARGET, "the typed row")
    assert row.n_acquirable == 0 and row.y is None and row.y_raw is None
    assert row.target_error(1.0) is None


def test_raw_step_reads_the_decision_that_led_to_the_step_in_raw_units():
    run = hand_written_run()
    start = raw_step(run, 0, RUN_SCHEMA, RUN_TARGET)
    assert start.acquired == -1 and not start.observed.any()
    assert np.allclose(start.rewards, [0.1, 0.2, 0.5])  # what the first choice is made from
    assert np.allclose(start.centre[:2], [10.0, 3.0])  # 10 + 2·0; expm1(log1p 3)
    assert start.centre[2] == 2.0  # code 0.9 -> the nearest category, 2
    assert np.allclose(start.y_samples, [15.0, 20.0, 25.0, 30.0]) and start.y_point == 22.5
    second = raw_step(run, 2, RUN_SCHEMA, RUN_TARGET)
    assert second.acquired == 0 and list(second.observed) == [True, False, True]
    assert np.allclose(second.rewards[:2], [0.4, 0.3]) and np.isnan(second.rewards[2])
    assert second.low[1] == 0.0  # expm1(0.2 − 1) < 0 is shown at the edge of the support
    assert np.allclose(second.high[0], 10.0 + 2.0 * 2.0)
    assert (second.nll, second.error) == (0.5, 0.2)
    assert raw_step(run, 99, RUN_SCHEMA, RUN_TARGET).step == 3  # clipped to D
    assert acquisition_order(run) == [2, 0, 1]
    short = hand_written_run()
    short.acquired = np.array([[2], [-1], [-1]])  # a typed row with one value: nothing after the first
    assert acquisition_order(short) == [2]


def test_raw_values_errors_and_ranges():
    assert np.allclose(table_to_raw(np.array([[1.0, 0.0, 2.0]]), RUN_SCHEMA), [[12.0, 0.0, 24.0]])
    run = hand_written_run()
    assert np.allclose(raw_errors(run, RUN_TARGET, 20.0), [2.5] * 4)  # |20 + 5·0.5 − 20|
    assert np.isnan(raw_errors(run, RUN_TARGET, None)).all()
    assert np.allclose(raw_errors(run, RUN_LABEL, 1.0), run.error[:, 0])  # 0/1 for a label
    data = np.stack([np.linspace(0, 10, 1001), np.linspace(5, 6, 1001), np.full(1001, 2.0)], axis=1)
    ranges = feature_ranges(data, truth_raw=np.array([30.0, NAN, 2.0]))
    assert np.allclose(ranges[0], [0.05 - 0.05 * 29.95, 30.0 + 0.05 * 29.95])  # the data's 0.5–99.5 % and the truth
    assert np.allclose(ranges[1], [5.005 - 0.05 * 0.99, 5.995 + 0.05 * 0.99])  # unknown truth: the data alone
    assert ranges[2][0] < 2.0 < ranges[2][1]  # a constant column still gets an axis
    low_y, high_y = target_range(np.linspace(0, 10, 1001), truth=42.0)
    assert low_y < 0.06 and 42.0 < high_y


def test_class_frequencies_of_label_draws():
    assert np.allclose(class_frequencies(np.array([0, 0, 1, 2.0]), 3), [0.5, 0.25, 0.25])
    assert np.allclose(class_frequencies(np.array([2.0, 2.0]), 4), [0, 0, 1, 0])
    assert np.allclose(class_frequencies(np.array([NAN, 1.2, 5.0]), 3), [0, 0.5, 0.5])  # NaN dropped, codes rounded and clipped


def test_a_stored_row_run_is_read_back_for_its_weights_and_ignored_for_others(tmp_path, monkeypatch):
    """Runs stored for a checkpoint come back as they were; once the weights change (another SHA-256)
    the stored file is stale and nothing is returned, so the page computes the row again."""
    import shutil

    import torch

    from vizvae.checkpoint import SHIPPED_DIR, checkpoint_dataset, load_checkpoint
    from vizvae.evaluation.acquisition_view import acquire_row_all, store_test_row_runs, stored_test_row_runs

    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "boston-vaem"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(SHIPPED_DIR / "boston-vaem" / name, folder / name)
    checkpoint = load_checkpoint(folder, device="cpu")
    dataset = checkpoint_dataset(checkpoint.config)
    row = acquisition_row(dataset.x_test[2], float(dataset.y_test[2]), dataset.schema, dataset.target, "test row 2")
    torch.manual_seed(0)
    runs = acquire_row_all(checkpoint.model, row, 20, seed=1)
    assert stored_test_row_runs(folder, 2, 20, 1) is None
    store_test_row_runs(folder, 2, 20, 1, runs)
    stored = stored_test_row_runs(folder, 2, 20, 1)
    assert set(stored) == {"mi", "kl", "random"}
    for strategy, run in runs.items():
        np.testing.assert_array_equal(stored[strategy].acquired, run.acquired)
        np.testing.assert_allclose(stored[strategy].y_samples, run.y_samples, rtol=1e-6)
    assert stored_test_row_runs(folder, 2, 20, 2) is None  # another seed: not this result
    with open(folder / "model.safetensors", "ab") as weights:
        weights.write(b" ")  # other weights, another SHA-256
    assert stored_test_row_runs(folder, 2, 20, 1) is None
