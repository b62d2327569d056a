"""The HMC lab through AppTest: the tight start, live training, and the curves of Figs 5.7–5.8."""

import json

from tests.app.helpers import elements, errors, finish_jobs, open_page


def lab_page(**query_params: str):
    return open_page("hmc_lab", **query_params)


def trace_names(at, key: str) -> list[str]:
    (chart,) = elements(at, "plotly_chart", key)
    return [trace.get("name") for trace in json.loads(chart.proto.spec)["data"]]


def test_the_lab_starts_tight_and_trains_live():
    at = lab_page(iters="10")
    assert errors(at) == []
    assert at.title[0].value == "HMC lab"
    assert at.radio(key="lab_target").value == "wave" and at.select_slider(key="lab_transitions").value == 5
    assert trace_names(at, "lab_before") == ["target p*", "initial proposal, 2σ", "HMC samples"]
    assert not elements(at, "plotly_chart", "lab_after")
    assert "Press **Train**" in at.info[0].value
    finish_jobs(at.button(key="lab_train").click().run())
    assert errors(at) == []
    assert len(elements(at, "plotly_chart", "lab_after")) == 1
    names = trace_names(at, "lab_history")
    assert {"mean acceptance", "HMC objective", "SKSD", "inflation", "divergent"} <= set(names)
    result = at.session_state["lab_result"]
    assert result["settings"] == ("wave", 5, "authors", 0.1, 0)
    assert result["result"].history["sksd"].shape == (10,)
    labels = [m.label for m in at.metric]
    assert labels == ["Acceptance", "Inflation s", "Mean step size", "Final SKSD"]
    # the metrics are the stored training's: the trained chains' acceptance, the inflation, the last five SKSDs
    shown = {m.label: m.value for m in at.metric}
    trained = result["result"]
    assert shown["Acceptance"] == f"{result['after'].acceptance:.2f}"
    assert shown["Inflation s"] == f"{float(trained.inflation[0]):.2f}"
    assert shown["Mean step size"] == f"{float(trained.step_sizes.mean()):.3f}"
    assert shown["Final SKSD"] == f"{float(trained.history['sksd'][-5:].mean()):.3f}"
    # the acceptance change: none when it rounds to 0, never coloured as a gain or a loss
    acceptance = next(m for m in at.metric if m.label == "Acceptance")
    assert acceptance.delta != "-0.00" and acceptance.delta != "+0.00"
    if acceptance.delta:
        from streamlit.proto.Metric_pb2 import Metric

        assert acceptance.proto.color == Metric.MetricColor.GRAY  # neutral: 0.65 is the optimum, not 1
    sksd = next(m for m in at.metric if m.label == "Final SKSD")
    assert "unbiased" in sksd.help and "below 0" in sksd.help
    assert "lab_history_csv" in {b.key for b in at.get("download_button")}
    assert at.query_params["iters"] == "10" and at.query_params["target"] == "wave"


def test_another_target_takes_its_figure_settings_and_forgets_the_old_training():
    at = lab_page(iters="10")
    finish_jobs(at.button(key="lab_train").click().run())
    at.radio(key="lab_target").set_value("dual_moon").run()
    assert errors(at) == []
    assert at.select_slider(key="lab_transitions").value == 10  # Fig. 5.7's T for the dual moon
    assert not elements(at, "plotly_chart", "lab_after")  # that training was on the wave
    at.checkbox(key="lab_per_dimension").check().run()
    finish_jobs(at.button(key="lab_train").click().run())
    assert errors(at) == []
    assert at.session_state["lab_result"]["result"].inflation.shape == (2,)
    assert "inflation of z2" in trace_names(at, "lab_history")


def test_training_runs_in_the_background_with_its_progress_and_a_cancel(monkeypatch):
    monkeypatch.setenv("VIZVAE_MAX_JOB_SECONDS", "3600")  # not refused on the rates of the earlier, short trainings
    at = lab_page(iters="400", target="dual_moon", T="20")
    at.button(key="lab_train").click().run()
    assert errors(at) == [] and len(elements(at, "flex_container", "lab_training_progress")) == 1
    assert elements(at, "plotly_chart", "lab_before")  # the rest of the page is drawn meanwhile
    job = at.session_state["_vizvae_jobs"].get("lab_training")
    while "iteration 2/400" not in job.progress().message and job.state == "running":
        job.wait(0.05)
    at.run()
    (bar,) = at.get("progress")
    assert bar.value < 100 and "Training: iteration" in bar.text and "acceptance so far" in bar.text
    at.button(key="lab_training_cancel").click().run()
    assert errors(at) == [] and list(at.get("progress")) == []
    assert "Training: cancelled." in [i.value for i in at.info]
    assert job.wait(60) and len(job.progress().message) > 0
    assert not elements(at, "plotly_chart", "lab_after") and "lab_result" not in at.session_state


def test_the_first_training_of_each_target_is_shipped_and_reaches_fig_5_8s_band(monkeypatch):
    """``precompute --tasks hmc_lab`` ships each target's first training, written by the current code
    (a stored training carries the SHA-256 of the sampler's sources): Train answers from it without a
    job. On the dual moon from U(0.02, 0.05), acceptance falls into [0.5, 0.9] and the steps grow
    (Fig. 5.8)."""
    import pages.hmc_lab as page

    def no_work(*args, **kwargs):
        raise AssertionError("trained what was shipped")

    monkeypatch.setattr(page, "train_toy_run", no_work)
    at = lab_page(target="dual_moon")
    at = at.button(key="lab_train").click().run()
    assert errors(at) == [] and at.get("progress") == []
    result = at.session_state["lab_result"]
    assert result["settings"] == ("dual_moon", 10, "authors", 0.1, 0)
    assert 0.5 <= result["after"].acceptance <= 0.9
    history = result["result"].history
    assert float(history["step_sizes"][-1].mean()) > 3 * float(history["step_sizes"][0].mean())
    assert len(elements(at, "plotly_chart", "lab_after")) == 1
