"""The Acquisition page through AppTest: one row's SAIA run step by step on a shipped mixed model, the three
strategies on the same row, the cached Fig. 5.5 curves, typed values with a bad cell, and a model that does
not fit the page."""

import base64
import json
import shutil

import numpy as np
import pytest

from tests.app.helpers import elements, errors, open_page, shipped
from vizvae.checkpoint import SHIPPED_DIR
from vizvae.evaluation.saia import read_saia_cache

SAMPLES = "20"  # draws per step: the claims below hold for any number of draws


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Rows computed by the page are kept in a cache of this test's own (the shipped runs are still read)."""
    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path / "cache"))


def settled(at):
    """The page after its background run of the row has finished and been drawn."""
    for _ in range(20):
        runner = at.session_state["_vizvae_jobs"] if "_vizvae_jobs" in at.session_state else None
        job = None if runner is None else runner.get("acquisition")
        if job is not None and job.state == "running":
            job.wait(300)
        elif job is None or "Step through" in [h.value for h in at.header]:
            return at
        at.run()
    return at


def acquisition_page(**query_params: str):
    return settled(open_page("acquisition", **query_params))


def figure(at, key: str) -> dict:
    (chart,) = elements(at, "plotly_chart", key)
    return json.loads(chart.proto.spec)


def array(value) -> np.ndarray:
    """A figure's data field: a plain list, or plotly's typed-array encoding {"dtype", "bdata"}."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table_with(at, column: str):
    (table,) = [t.value for t in at.dataframe if column in t.value.columns]
    return table


def acquired_bar(at) -> tuple[str, float, float]:
    """(the highlighted feature, its reward, the highest reward) in the reward chart."""
    bars = figure(at, "acq_rewards")["data"][0]
    colours = bars["marker"]["color"]
    (index,) = [i for i, c in enumerate(colours) if c == "#EF553B"]
    heights = array(bars["y"])
    return bars["x"][index], float(heights[index]), float(heights.max())


def test_the_page_renders_a_run_for_a_mixed_model():
    at = acquisition_page(model=shipped("boston-vaem"), samples=SAMPLES)
    assert errors(at) == []
    assert at.title[0].value == "Acquisition"
    assert [h.value for h in at.header] == ["Step through", "Strategies on this row", "Across the test set (Fig. 5.5)"]
    for key in ("acq_rewards", "acq_target", "acq_imputed", "acq_compare", "acq_dataset_curves"):
        assert len(elements(at, "plotly_chart", key)) == 1, key
    assert at.session_state["acq_step"] == 0 and metrics(at)["Acquired"] == "0 of 13"
    # short enough to be read whole: the chart title and the strategy box (their long forms beside them)
    assert figure(at, "acq_rewards")["layout"]["title"]["text"] == "Rewards of the missing features"
    assert any(c.value.startswith("Before the first step: the feature with the highest reward") for c in at.caption)
    strategy = at.selectbox(key="acq_strategy")
    assert strategy.options == ["MI (eq. 5.13)", "KL (EDDI)", "random"]
    assert "sampling-based MI (eq. 5.13)" in strategy.help
    assert table_with(at, "status")["status"].eq("missing").all()
    target = figure(at, "acq_target")
    truth = next(t for t in target["data"] if t["name"].startswith("true value"))
    assert array(truth["x"])[0] > 0  # MEDV in raw units (thousands of dollars), not standardised
    orders = table_with(at, "step")
    assert list(orders.columns) == ["step", "sampling-based MI (eq. 5.13)", "encoder KL (EDDI)", "random"]
    for column in orders.columns[1:]:
        assert sorted(orders[column]) == sorted(shipped_features())  # every strategy acquires every feature once
    # Fig. 5.5 comes from the cache beside the weights, not from a new run
    cache = read_saia_cache(SHIPPED_DIR / "boston-vaem")
    curves = figure(at, "acq_dataset_curves")["data"]
    line = next(t for t in curves if t["name"] == "boston-vaem" and t.get("xaxis", "x") == "x")
    assert np.allclose(array(line["y"]), cache["curves"]["mi"])


def shipped_features() -> list[str]:
    from vizvae.data import load_dataset

    return list(load_dataset("boston").feature_names)


def test_stepping_reveals_one_distinct_feature_per_step_and_back_and_reset_undo_it():
    from vizvae.data import load_dataset
    from vizvae.data.schema import table_to_raw
    from vizvae.viz.acquisition import format_value

    boston = load_dataset("boston")
    row = table_to_raw(boston.x_test[4], boston.schema)  # in raw units, as the data file has it
    at = acquisition_page(model=shipped("boston-vaem"), samples=SAMPLES, strategy="mi", row="4")
    acquired = []
    for step in (1, 2, 3):
        settled(at.button(key="acq_forward").click().run())
        assert errors(at) == []
        assert at.session_state["acq_step"] == step and at.query_params["t"] == str(step)
        name, reward, best = acquired_bar(at)
        assert reward == best  # the highlighted feature is the argmax of the rewards shown
        assert metrics(at)["Just acquired"] == name
        j = boston.feature_names.index(name)
        assert metrics(at)["Its true value"] == format_value(row[j], boston.schema[j].is_discrete)
        acquired.append(name)
    assert len(set(acquired)) == 3
    status = table_with(at, "status").set_index("feature")["status"]
    assert sorted(status[status.str.startswith("acquired")].items()) == sorted(
        (name, f"acquired at step {k}") for k, name in enumerate(acquired, start=1))
    assert (status == "missing").sum() == 10
    assert list(table_with(at, "step")["sampling-based MI (eq. 5.13)"][:3]) == acquired
    assert metrics(at)["Acquired"] == "3 of 13"
    settled(at.button(key="acq_back").click().run())
    assert at.session_state["acq_step"] == 2 and acquired_bar(at)[0] == acquired[1]
    settled(at.button(key="acq_reset").click().run())
    assert at.session_state["acq_step"] == 0 and at.query_params["t"] == "0"


def test_auto_play_takes_the_last_step_and_stops():
    at = acquisition_page(model=shipped("boston-vaem"), samples=SAMPLES, t="12")
    assert at.session_state["acq_step"] == 12
    settled(at.toggle(key="acq_play").set_value(True).run())
    assert errors(at) == []
    assert at.session_state["acq_step"] == 13 and at.toggle(key="acq_play").value is False
    assert metrics(at)["Acquired"] == "13 of 13"


def test_a_typed_row_with_a_word_in_a_numeric_column_is_flagged_and_still_runs():
    at = acquisition_page(model=shipped("boston-vaem"), samples=SAMPLES)
    settled(at.radio(key="acq_source").set_value("typed").run())
    assert errors(at) == []
    assert at.text_input(key="acq_value_5").label == "RM"
    assert at.text_input(key="acq_value_5").value != ""  # filled in from the test row
    at.text_input(key="acq_value_0").set_value("lots")  # CRIM
    at.text_input(key="acq_value_y").set_value("")  # the target unknown
    settled(at.run())
    assert errors(at) == []
    warnings = [w.value for w in at.warning]
    assert any("'CRIM'" in w and "'lots' is not a number" in w for w in warnings)
    assert metrics(at)["Acquired"] == "0 of 12"  # CRIM is missing, so it cannot be acquired
    assert not any(label.startswith("Error") for label in metrics(at))
    settled(at.button(key="acq_forward").click().run())
    assert errors(at) == [] and at.session_state["acq_step"] == 1
    assert acquired_bar(at)[0] != "CRIM"
    assert "unknown" in " ".join(i.value for i in at.info)  # no truth: the comparison shows the orders only
    orders = table_with(at, "step")
    assert len(orders) == 12 and "CRIM" not in set(orders["random"])
    settled(at.button(key="acq_clear").click().run())
    assert errors(at) == []
    assert any("nothing to acquire" in w.value for w in at.warning)
    at.button(key="acq_fill").click().run()  # the test row again, target included
    assert errors(at) == [] and metrics(at)["Acquired"].endswith("of 13")
    assert any(label.startswith("Error (true MEDV = ") for label in metrics(at))


def test_uploaded_rows_are_checked_cell_by_cell():
    at = acquisition_page(model=shipped("boston-vaem"), samples=SAMPLES, source="upload")
    assert errors(at) == [] and "Upload a CSV" in at.info[0].value
    rows = b"CRIM,RM,RAD,MEDV,colour\n0.1,6.5,7.5,24,red\n0.2,abc,24,,blue\n"
    settled(at.file_uploader(key="acq_upload").set_value(("rows.csv", rows, "text/csv")).run())
    assert errors(at) == []
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("row 1, column 'RAD': 7.5 is not one of this column's values") for w in warnings)
    assert any(w.startswith("row 2, column 'RM': 'abc' is not a number") for w in warnings)
    notes = " ".join(i.value for i in at.info)
    assert "ZN" in notes and "colour" in notes  # missing columns and ignored ones are said
    assert metrics(at)["Acquired"] == "0 of 2"  # CRIM and RM: RAD's value was refused
    assert float(metrics(at)["Error (true MEDV = 24)"]) >= 0
    settled(at.number_input(key="acq_upload_row").set_value(2).run())
    assert errors(at) == [] and metrics(at)["Acquired"] == "0 of 2"  # CRIM and RAD
    assert not any(label.startswith("Error") for label in metrics(at))  # MEDV left empty
    settled(at.file_uploader(key="acq_upload").set_value(("noise.csv", b"\x00\x01\x02", "text/csv")).run())
    assert errors(at) != [] and "noise.csv" in at.error[0].value
    assert not at.exception


def test_an_uploaded_csv_is_parsed_once_capped_in_rows_and_refuses_overflowing_values(monkeypatch):
    import vizvae.data.user as user

    calls = []
    parse = user.rows_from_csv
    monkeypatch.setattr(user, "rows_from_csv", lambda *a, **k: calls.append(1) or parse(*a, **k))
    import pages.acquisition

    monkeypatch.setattr(pages.acquisition, "rows_from_csv", user.rows_from_csv)
    at = acquisition_page(model=shipped("boston-vaem"), samples=SAMPLES, source="upload")
    rows = b"CRIM,RM,MEDV\n1e308,6.5,24\n0.2,6.1,21\n"
    settled(at.file_uploader(key="acq_upload").set_value(("rows.csv", rows, "text/csv")).run())
    assert errors(at) == [] and not at.exception
    assert any(w.value.startswith("row 1, column 'CRIM': 1e308 is beyond the range of the 32-bit numbers")
               for w in at.warning)
    assert metrics(at)["Acquired"] == "0 of 1"  # RM only: CRIM's value was refused, not taken as infinity
    settled(at.number_input(key="acq_upload_row").set_value(2).run())  # reruns: the file is not parsed again
    assert len(calls) == 1 and metrics(at)["Acquired"] == "0 of 2"
    monkeypatch.setenv("VIZVAE_MAX_CSV_ROWS", "1")
    settled(at.file_uploader(key="acq_upload").set_value(("many.csv", rows, "text/csv")).run())
    assert "many.csv: the file has about 2 rows, over the limit of 1 rows" in at.error[0].value
    assert "VIZVAE\\_MAX\\_CSV\\_ROWS" in at.error[0].value and not at.exception  # escaped: shown as typed


def test_a_model_without_a_saia_cache_is_named_with_the_command(tmp_path):
    folder = tmp_path / "my-vaem"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(SHIPPED_DIR / shipped("boston-vaem") / name, folder / name)
    at = acquisition_page(model=str(folder), samples=SAMPLES)
    assert errors(at) == []
    notes = " ".join(i.value for i in at.info)
    assert "boston-vaem (opened)" in notes and f"python -m vizvae evaluate {folder} --task saia --json" in notes


def test_a_model_that_is_not_mixed_type_is_told_what_the_page_needs():
    at = acquisition_page(model=shipped("mnist-vae-2d"))
    assert errors(at) == []
    (warning,) = at.warning
    assert "needs a mixed-type model" in warning.value and "this one is a vae" in warning.value
    offered = [b.label.removeprefix("Switch to ") for b in at.button if b.label.startswith("Switch to ")]
    assert "boston-vaem" in offered and not any(name.startswith("mnist") for name in offered)


def test_the_default_view_of_a_shipped_hmc_model_is_read_from_its_shipped_runs():
    """boston-hhvaem's default row ships with it (stamped with its weights' SHA-256): the first visit
    starts no computation and shows the stored order."""
    from vizvae.evaluation.acquisition_view import DEFAULT_VIEW, stored_test_row_runs

    at = open_page("acquisition", model=shipped("boston-hhvaem"))
    assert errors(at) == []
    runner = at.session_state["_vizvae_jobs"] if "_vizvae_jobs" in at.session_state else None
    assert runner is None or runner.get("acquisition") is None
    stored = stored_test_row_runs(SHIPPED_DIR / "boston-hhvaem", DEFAULT_VIEW["row"], DEFAULT_VIEW["samples"],
                                  DEFAULT_VIEW["seed"])
    names = shipped_features()
    assert list(table_with(at, "step")["sampling-based MI (eq. 5.13)"]) == [names[j] for j in stored["mi"].acquired[:, 0]]


def test_another_row_cancels_the_run_of_the_old_one_at_once():
    at = open_page("acquisition", model=shipped("boston-hhvaem"), samples="500", row="7")
    old = at.session_state["_vizvae_jobs"].get("acquisition")
    assert old is not None and old.state == "running"
    at.number_input(key="acq_row").set_value(8).run()
    assert old.state == "cancelled"
    settled(at)
    assert errors(at) == [] and at.session_state["acq_row"] == 8


def test_a_model_trained_on_a_csv_opens_on_acquisition_and_says_when_its_data_has_moved(tmp_path):
    from vizvae.__main__ import main

    rng = np.random.default_rng(0)
    lines = ["a,b,kind,flag,y"] + [f"{rng.normal():.3f},{rng.uniform(0, 5):.3f},{i % 3},{i % 2},{rng.normal():.3f}"
                                   for i in range(60)]
    data = tmp_path / "rows.csv"
    data.write_text("\n".join(lines) + "\n")
    (tmp_path / "schema.json").write_text(json.dumps({"target": "y", "columns": {"kind": "categorical"}}))
    out = tmp_path / "model"
    assert main(["train", "--model", "vaem", "--dataset", str(data), "--steps", "3", "--marginal-steps", "3",
                 "--quiet", "--out", str(out)]) == 0
    at = acquisition_page(model=str(out), samples=SAMPLES)
    assert errors(at) == [] and "Acquired" in metrics(at)
    assert any(label.startswith("Error (true y = ") for label in metrics(at))
    data.rename(tmp_path / "elsewhere.csv")
    at = acquisition_page(model=str(out), samples=SAMPLES)
    assert any("trained on 'rows.csv', which was at" in e and "is not there any more" in e for e in errors(at))
    assert not at.exception
