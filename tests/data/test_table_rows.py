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
