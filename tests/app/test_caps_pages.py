"""The compute caps (``vizvae.server.CAPS``) on the pages through AppTest: a request one step over a cap
is refused on the page with a message naming the cap, its environment variable and the value asked
for, and nothing is computed or drawn for it (never clipped to the cap); at exactly the cap the same
request runs. Caps are read from the environment at call time, so ``monkeypatch.setenv`` lowers them
for the session under test."""

from __future__ import annotations

import pytest

from tests.app.helpers import elements, errors, finish_jobs, latent_page, open_page, shipped


def refusals(at) -> list[str]:
    return [w.value for w in at.warning if "over this server's cap" in w.value]


def refused(at, label: str, env: str, asked: str, limit: str) -> str:
    """The one refusal on the page, checked to name the cap, its variable, the value asked for and the cap."""
    (message,) = refusals(at)
    assert message.startswith(f"{label} = {asked} is over this server's cap of {limit} "), message
    assert f"(set {env} to raise it)" in message
    return message


def headers(at) -> list[str]:
    return [h.value for h in at.header]


def jobs(at) -> list[str]:
    runner = at.session_state["_vizvae_jobs"] if "_vizvae_jobs" in at.session_state else None
    return [job.name for job in runner.jobs()] if runner else []


# -- Posterior: HMC chains × transitions, and the gaps' IWAE K ------------------------------------------------
POSTERIOR_HEADERS = ["Posterior and chains", "Marginals", "Chain diagnostics", "Posterior gaps"]
# a view of mnist-vae-2d (T = 10, no trained HMC) that is not shipped: its chains are computed on request
UNSTORED_VIEW = dict(image="13", seed="5")  # not the view tests/app/test_posterior_page.py computes


def test_posterior_chains_over_the_cap_are_refused_and_run_at_the_cap(monkeypatch):
    monkeypatch.setenv("VIZVAE_MAX_CHAIN_TRANSITIONS", "199")
    at = finish_jobs(open_page("posterior", model=shipped("mnist-vae-2d"), chains="10", **UNSTORED_VIEW))
    assert errors(at) == [] and refusals(at) == [] and headers(at) == POSTERIOR_HEADERS  # 10 × 10 = 100 runs
    at = finish_jobs(at.select_slider(key="posterior_chains").set_value(20).run())  # 20 × 10 = 200
    assert errors(at) == []
    refused(at, "HMC chains × transitions", "VIZVAE_MAX_CHAIN_TRANSITIONS", "200", "199")
    assert headers(at) == [] and not elements(at, "plotly_chart", "posterior_plane")  # nothing drawn for 20 chains
    assert list(at.get("progress")) == [] and "posterior" not in jobs(at)  # nothing started
    assert all(m.label != "Mean acceptance" for m in at.metric)
    monkeypatch.setenv("VIZVAE_MAX_CHAIN_TRANSITIONS", "200")  # exactly what 20 chains need
    at = finish_jobs(at.run())
    assert errors(at) == [] and refusals(at) == [] and headers(at) == POSTERIOR_HEADERS
    assert "**HMC**: 20 chains × T = 10 transitions" in " ".join(m.value for m in at.markdown)


def test_posterior_gaps_over_the_iwae_cap_are_refused_and_run_at_the_cap(monkeypatch):
    monkeypatch.setenv("VIZVAE_MAX_IWAE_K", "4999")  # the gaps' IWAE curve goes up to K = 5000
    at = finish_jobs(open_page("posterior", model=shipped("mnist-vae-2d"), chains="10", **UNSTORED_VIEW))
    assert errors(at) == [] and refusals(at) == [] and headers(at) == POSTERIOR_HEADERS
    at = finish_jobs(at.toggle(key="posterior_gaps_on").set_value(True).run())
    assert errors(at) == []
    refused(at, "IWAE K (importance samples)", "VIZVAE_MAX_IWAE_K", "5,000", "4,999")
    labels = [m.label for m in at.metric]
    assert "Amortisation gap" not in labels and "Approximation gap" not in labels
    assert not elements(at, "plotly_chart", "posterior_iwae") and not elements(at, "plotly_chart", "posterior_gap_bar")
    assert list(at.get("progress")) == [] and "posterior_gaps" not in jobs(at)
    monkeypatch.setenv("VIZVAE_MAX_IWAE_K", "5000")
    at = finish_jobs(at.run())
    assert errors(at) == [] and refusals(at) == []
    assert {"Amortisation gap", "Approximation gap"} <= {m.label for m in at.metric}
    assert len(elements(at, "plotly_chart", "posterior_iwae")) == 1


# -- Inpainting: samples and SIR proposals ---------------------------------------------------------------------
def inpainting_rows(at) -> list[str]:
    return [c.key for c in at.get("flex_container") if (c.key or "").startswith("inpaint_row_")]


def run_inpainting(at):
    return finish_jobs(at.button(key="inpaint_run").click().run())


def test_inpainting_samples_over_the_cap_are_refused_and_run_at_the_cap(monkeypatch):
    monkeypatch.setenv("VIZVAE_MAX_SAMPLES", "15")
    at = open_page("inpainting", model=shipped("mnist-pvae"), methods="encoder", samples="16", iters="10",
                   props="100")
    at = run_inpainting(at)
    assert errors(at) == []
    refused(at, "Samples", "VIZVAE_MAX_SAMPLES", "16", "15")
    assert inpainting_rows(at) == [] and not at.dataframe and list(at.get("progress")) == []
    assert "inpaint" not in jobs(at)  # not run with 15 samples either
    monkeypatch.setenv("VIZVAE_MAX_SAMPLES", "16")
    at = run_inpainting(at)
    assert errors(at) == [] and refusals(at) == [] and inpainting_rows(at) == ["inpaint_row_0"]


def test_inpainting_sir_proposals_over_the_cap_are_refused_and_run_at_the_cap(monkeypatch):
    monkeypatch.setenv("VIZVAE_MAX_PROPOSALS", "99")
    at = open_page("inpainting", model=shipped("mnist-pvae"), methods="sir", samples="8", iters="10", props="100")
    at = run_inpainting(at)
    assert errors(at) == []
    refused(at, "SIR proposals", "VIZVAE_MAX_PROPOSALS", "100", "99")
    assert inpainting_rows(at) == [] and not at.dataframe and list(at.get("progress")) == []
    assert "inpaint" not in jobs(at)
    monkeypatch.setenv("VIZVAE_MAX_PROPOSALS", "100")
    at = run_inpainting(at)
    assert errors(at) == [] and refusals(at) == [] and inpainting_rows(at) == ["inpaint_row_0"]
    assert "ESS" in " ".join(m.value for m in at.markdown) and "of 100" in " ".join(m.value for m in at.markdown)


def test_a_knob_of_a_method_not_picked_is_not_held_to_its_cap(monkeypatch):
    monkeypatch.setenv("VIZVAE_MAX_PROPOSALS", "1")  # SIR's knob, and SIR is not in this run
    monkeypatch.setenv("VIZVAE_MAX_CHAIN_TRANSITIONS", "1")  # nor is HMC
    at = open_page("inpainting", model=shipped("mnist-pvae"), methods="encoder", samples="8", iters="10",
                   props="100")
    at = run_inpainting(at)
    assert errors(at) == [] and refusals(at) == [] and inpainting_rows(at) == ["inpaint_row_0"]


# -- Latent space: UMAP (and t-SNE, capped on the same count) ---------------------------------------------------
@pytest.mark.parametrize("method, label", [("umap", "UMAP"), ("tsne", "t-SNE")])
def test_latent_projection_over_the_point_cap_is_refused_and_runs_at_the_cap(monkeypatch, tmp_path, method, label):
    import re

    import numpy as np

    from vizvae.inference import projection

    calls = []

    def fake_projection(x, seed=0):  # the real ones take minutes on a busy CPU; tests/viz covers them
        calls.append(len(x))
        return projection.Projection(np.random.default_rng(seed).normal(size=(len(x), 2)).astype(np.float32), method)

    monkeypatch.setitem(projection.METHODS, method, fake_projection)
    monkeypatch.setattr(projection.cache, "precomputed_dir", lambda folder: tmp_path / "none")  # nothing shipped
    at = latent_page(model=shipped("mnist-vae-16d"))
    assert errors(at) == [] and at.radio(key="projection_method").value == "pca"
    (n_points,) = [int(m.group(1).replace(",", "")) for c in at.caption
                   for m in [re.search(r"([\d,]+) test images of", c.value)] if m]  # every encoded test point
    monkeypatch.setenv("VIZVAE_MAX_UMAP_POINTS", str(n_points - 1))
    at = at.radio(key="projection_method").set_value(method).run()
    assert errors(at) == []
    message = refused(at, "UMAP points", "VIZVAE_MAX_UMAP_POINTS", f"{n_points:,}", f"{n_points - 1:,}")
    assert message.endswith("Choose another projection.")
    assert calls == [] and not at.get("status")  # nothing computed, not on a subset either
    assert not elements(at, "plotly_chart", "latent_projection")
    assert headers(at)[0] == "Encoded test set"  # the rest of the page is still drawn
    monkeypatch.setenv("VIZVAE_MAX_UMAP_POINTS", str(n_points))
    at = at.run()
    assert errors(at) == [] and refusals(at) == [] and calls == [n_points]
    assert len(elements(at, "plotly_chart", "latent_projection")) == 1
    assert any(f"{label} computed in" in c.value for c in at.caption)


# -- HMC lab: chains × transitions of the chains before training and of a training ---------------------------
def test_hmc_lab_chains_over_the_cap_are_refused_and_run_at_the_cap(monkeypatch):
    from vizvae.inference.toy_lab import LAB_CHAINS

    needed = LAB_CHAINS * 10  # T = 10
    monkeypatch.setenv("VIZVAE_MAX_CHAIN_TRANSITIONS", str(needed - 1))
    at = open_page("hmc_lab", iters="10")  # not the shipped first training (150 iterations)
    assert errors(at) == [] and refusals(at) == [] and at.select_slider(key="lab_transitions").value == 5
    assert len(elements(at, "plotly_chart", "lab_before")) == 1  # 500 chains × T = 5 are within the cap
    at = at.select_slider(key="lab_transitions").set_value(10).run()
    assert errors(at) == []
    refused(at, "HMC chains × transitions", "VIZVAE_MAX_CHAIN_TRANSITIONS", f"{needed:,}", f"{needed - 1:,}")
    assert not elements(at, "plotly_chart", "lab_before")  # not drawn with fewer chains either
    assert at.button(key="lab_train")  # the settings stay, to be changed
    at = finish_jobs(at.button(key="lab_train").click().run())
    assert errors(at) == []
    refused(at, "HMC chains × transitions", "VIZVAE_MAX_CHAIN_TRANSITIONS", f"{needed:,}", f"{needed - 1:,}")
    assert "lab_result" not in at.session_state and "lab_training" not in jobs(at)
    assert not elements(at, "plotly_chart", "lab_after") and not elements(at, "plotly_chart", "lab_history")
    assert list(at.get("progress")) == []
    monkeypatch.setenv("VIZVAE_MAX_CHAIN_TRANSITIONS", str(needed))
    at = at.run()
    assert errors(at) == [] and refusals(at) == [] and len(elements(at, "plotly_chart", "lab_before")) == 1
    assert "lab_training" not in jobs(at)  # the refused Train is not taken up later
    at = finish_jobs(at.button(key="lab_train").click().run())
    assert errors(at) == [] and refusals(at) == []
    assert at.session_state["lab_result"]["settings"][:2] == ("wave", 10)
    assert len(elements(at, "plotly_chart", "lab_after")) == 1
