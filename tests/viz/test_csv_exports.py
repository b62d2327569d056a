"""CSV downloads cannot carry a spreadsheet formula: every text cell that starts like one is neutralised."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd
import pytest

from vizvae.checkpoint import REPO_ROOT
from vizvae.viz.tables import csv_bytes

ATTACKS = ["=cmd|' /C calc'!A0", "+HYPERLINK(\"http://x\",\"y\")", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd",
           "\t=1+1", "\r=1+1"]


def read_back(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_formula_in_a_text_cell_or_a_column_name_is_read_as_text(attack):
    table = pd.DataFrame({"feature": [attack, "RM"], attack: ["x", "y"], "value": [-1.5, 2.0]})
    header, first, second = read_back(csv_bytes(table))
    assert header == ["feature", "'" + attack, "value"]
    assert first == ["'" + attack, "x", "-1.5"] and second == ["RM", "y", "2.0"]  # numbers stay numbers


def test_numbers_and_plain_text_are_left_as_they_are():
    table = pd.DataFrame({"step": [0, 1], "score": [-0.25, 1e-3], "name": ["CRIM", "a-b"], "ok": [True, False]})
    assert csv_bytes(table) == table.to_csv(index=False, lineterminator="\r\n").encode()


def test_every_csv_download_on_the_pages_goes_through_csv_bytes():
    calls = []
    for page in sorted((REPO_ROOT / "pages").glob("*.py")):
        text = Path(page).read_text()
        calls += [(page.name, m.group(1)) for m in re.finditer(r"download_csv\(\s*[^,]+,\s*([A-Za-z_]+)\(", text)]
        assert text.count("download_csv(") - ("def download_csv(" in text) == \
            len([c for c in calls if c[0] == page.name]), page.name
    assert calls and {what for _, what in calls} == {"csv_bytes"}
