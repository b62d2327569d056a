"""A user's own rows for a trained table model, checked cell by cell."""

from __future__ import annotations

import numpy as np
import pytest

from vizvae.data import load_dataset
from vizvae.data.user import rows_from_csv
from vizvae.errors import DataError


@pytest.fixture(scope="module")
def boston():
    return load_dataset("boston")


def header(dataset) -> str:
    return ",".join([*dataset.feature_names, dataset.target_name])


def test_good_rows_match_the_datasets_own_preprocessing(boston):
    raw = boston.features_to_raw(boston.x_test[:2])
    target = boston.target.to_raw(boston.y_test[:2])
    lines = [header(boston)] + [",".join(f"{v:.10g}" for v in [*r, t]) for r, t in zip(raw, target)]
    rows = rows_from_csv("\n".join(lines).encode(), boston.schema, boston.target)
    assert rows.problems == [] and rows.notes == []
    np.testing.assert_allclose(rows.x, boston.x_test[:2], atol=1e-5)
    np.testing.assert_allclose(rows.y, boston.y_test[:2], atol=1e-5)
    assert rows.observed.all()


def test_each_bad_cell_gets_its_own_message_and_becomes_missing(boston):
    names = boston.feature_names
    good = boston.features_to_raw(boston.x_test[:1])[0]
    cells = [f"{v:.6g}" for v in good]
    bad = list(cells)
    bad[names.index("RM")] = "six"  # text in a numeric column
    bad[names.index("CHAS")] = "3"  # not one of {0, 1}
    bad[names.index("AGE")] = "-4"  # negative in a log-Gaussian column
    bad[names.index("TAX")] = ""  # simply missing: no message
    text = "\n".join([header(boston), ",".join(cells + ["21.6"]), ",".join(bad + ["oops"])])
    rows = rows_from_csv(text.encode(), boston.schema, boston.target)
    messages = {(p.row, p.column): str(p) for p in rows.problems}
    assert set(messages) == {(2, "RM"), (2, "CHAS"), (2, "AGE"), (2, "MEDV")}
    assert "'six' is not a number" in messages[(2, "RM")] and "row 2, column 'RM'" in messages[(2, "RM")]
    assert "not one of this column's values (0, 1)" in messages[(2, "CHAS")]
    assert "negative" in messages[(2, "AGE")]
    assert rows.observed[0].all()  # the first row is untouched
    missing = {names[j] for j in np.flatnonzero(~rows.observed[1])}
    assert missing == {"RM", "CHAS", "AGE", "TAX"}
    assert np.isnan(rows.y[1]) and np.isfinite(rows.y[0])


def test_missing_and_unknown_columns_are_noted_not_refused(boston):
    text = "RM,LSTAT,colour\n6.5,5.0,red\n"
    rows = rows_from_csv(text.encode(), boston.schema, boston.target)
    assert rows.problems == []
    assert any("missing in every row" in n and "CRIM" in n for n in rows.notes)
    assert any("ignored" in n and "colour" in n for n in rows.notes)
    assert rows.observed[0].sum() == 2


@pytest.mark.parametrize("content, message", [(b"a,b\n1,2\n", "none of the columns"),
                                              (b"RM,LSTAT\n", "no rows"),
                                              (b"\x00\x01garbage", "header")])
def test_unusable_files_raise_one_clear_error(boston, content, message):
    with pytest.raises(DataError, match=message):
        rows_from_csv(content, boston.schema, boston.target)


@pytest.mark.parametrize("cell, message", [("1e308", "beyond the range of the 32-bit numbers"),
                                           ("-1e308", "beyond the range of the 32-bit numbers"),
                                           ("inf", "'inf' is not a finite number"),
                                           ("-Infinity", "'-Infinity' is not a finite number"),
                                           ("nan", "'nan' is not a finite number"),
                                           ("1e400", "'1e400' is not a finite number")])
def test_a_value_the_model_cannot_hold_is_refused_like_any_bad_cell(boston, cell, message):
    cells = [f"{v:.6g}" for v in boston.features_to_raw(boston.x_test[:1])[0]]
    cells[boston.feature_names.index("RM")] = cell
    rows = rows_from_csv("\n".join([header(boston), ",".join(cells + ["21.6"])]).encode(), boston.schema,
                         boston.target)
    (problem,) = rows.problems
    assert (problem.row, problem.column) == (1, "RM") and message in str(problem)
    assert rows.n_problems == 1 and np.isfinite(rows.x[np.isfinite(rows.x)]).all()
    assert not rows.observed[0, boston.feature_names.index("RM")] and rows.observed[0].sum() == len(cells) - 1


def test_many_bad_cells_are_counted_all_and_listed_up_to_a_bound(boston):
    from vizvae.data.user import LISTED_PROBLEMS

    n = LISTED_PROBLEMS + 500
    text = "RM,LSTAT\n" + "six,5.0\n" * n
    rows = rows_from_csv(text.encode(), boston.schema, boston.target)
    assert rows.n_problems == n and len(rows.problems) == LISTED_PROBLEMS
    assert rows.problems[-1].row == LISTED_PROBLEMS and not rows.observed[:, boston.feature_names.index("RM")].any()
    assert rows.observed[:, boston.feature_names.index("LSTAT")].all()


def test_column_wise_checks_agree_with_a_cell_by_cell_reading(boston):
    """Every kind of cell, in every kind of column, against the single-cell rules of the schema."""
    rng = np.random.default_rng(0)
    pool = ["", " ", "0", "1", "-4", "3", "2.5", "6.5", "1e308", "abc", "inf", "100", "0.0", "1e-3"]
    n = 300
    cells = {name: rng.choice(pool, n) for name in boston.feature_names}
    text = ",".join(boston.feature_names) + "\n" + "\n".join(
        ",".join(cells[name][i] for name in boston.feature_names) for i in range(n))
    rows = rows_from_csv(text.encode(), boston.schema, boston.target)
    for j, column in enumerate(boston.schema):
        for i in range(n):
            raw = cells[column.name][i].strip()
            ok = raw != "" and raw not in ("abc", "inf") and float(raw) < 1e300
            ok = ok and not (column.kind == "loggaussian" and float(raw) < 0)
            ok = ok and not (column.is_discrete and not np.isclose(column.categories, float(raw)).any())
            if ok:
                assert rows.x[i, j] == pytest.approx(float(column.to_model(np.array([float(raw)]))[0]), abs=1e-6)
            else:
                assert np.isnan(rows.x[i, j])
    assert rows.n_problems == sum(1 for name in boston.feature_names for c in cells[name]
                                  if c.strip() != "") - int(rows.observed.sum())


def test_a_file_over_the_row_limit_is_refused_before_it_is_parsed(boston, monkeypatch):
    import pandas as pd

    def parse(*args, **kwargs):
        raise AssertionError("parsed")

    monkeypatch.setenv("VIZVAE_MAX_CSV_ROWS", "1000")
    text = "RM,LSTAT\n" + "6.5,5.0\n" * 1001
    monkeypatch.setattr(pd, "read_csv", parse)
    with pytest.raises(DataError, match=r"about 1,001 rows, over the limit of 1,000 rows .*VIZVAE_MAX_CSV_ROWS"):
        rows_from_csv(text.encode(), boston.schema, boston.target)
    monkeypatch.undo()
    monkeypatch.setenv("VIZVAE_MAX_CSV_ROWS", "1001")
    assert len(rows_from_csv(text.encode(), boston.schema, boston.target)) == 1001


def test_rows_the_line_count_misses_still_count_against_the_limit(boston, monkeypatch):
    monkeypatch.setenv("VIZVAE_MAX_CSV_ROWS", "3")
    text = "RM,LSTAT\r" + "6.5,5.0\r" * 4  # old Mac line ends: no \n to count
    with pytest.raises(DataError, match="more than 3 rows, the limit a page takes"):
        rows_from_csv(text.encode(), boston.schema, boston.target)
