"""The posterior page through AppTest: the 2-D model's exact posterior and chain stepper, masks, the gaps,
a higher-dimensional model's views, and a model with trained HMC."""

import json

import pytest

from tests.app.helpers import elements, errors, finish_jobs, open_page, shipped


def posterior_page(**query_params: str):
    """The page once the background work of its first view is done."""
    return finish_jobs(open_page("posterior", **query_params))


def figure(at, key: str) -> dict:
    (chart,) = elements(at, "plotly_chart", key)
    return json.loads(chart.proto.spec)


def trace_names(at, key: str) -> list[str]:
    return [trace.get("name") for trace in figure(at, key)["data"]]


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_2d_model_shows_the_exact_posterior_and_steps_through_the_chains():
    at = posterior_page(model=shipped("mnist-vae-2d"))
    assert errors(at) == []
    assert at.title[0].value == "Posterior"
    assert [h.value for h in at.header] == ["Posterior and chains", "Marginals", "Chain diagnostics", "Posterior gaps"]
    stepper = at.slider(key="posterior_step")
    assert (stepper.min, stepper.max, stepper.value) == (0, 10, 10)
    names = trace_names(at, "posterior_plane")
    assert names[:2] == ["p(z | x) (exact)", "encoder q_φ(z | x), 2σ"] and names[-1] == "chains at t = 10"
    assert "paths, t = 0…10" in names
    assert float(metrics(at)["log p(x_O)"]) < 0
    for key in ("posterior_marginals", "posterior_acceptance", "posterior_step_sizes", "posterior_ess"):
        assert len(elements(at, "plotly_chart", key)) == 1
    assert not elements(at, "plotly_chart", "posterior_corner")  # 2-D: the plane is the whole posterior
    assert "Switch on" in at.info[0].value  # the gaps wait to be asked for
    at = finish_jobs(at.slider(key="posterior_step").set_value(0).run())
    assert errors(at) == []
    names = trace_names(at, "posterior_plane")
    assert names[-1] == "chains at t = 0" and not any(name.startswith("paths") for name in names)
    assert at.query_params["t"] == "0" and at.query_params["image"] == "0"


def test_the_gaps_split_into_approximation_and_amortisation():
    at = posterior_page(model=shipped("mnist-vae-2d"), image="3")
    at = finish_jobs(at.toggle(key="posterior_gaps_on").set_value(True).run())
    assert errors(at) == []
    shown = metrics(at)
    amortisation, approximation = float(shown["Amortisation gap"]), float(shown["Approximation gap"])
    log_evidence, elbo = float(shown["log p(x_O), quadrature"]), float(shown["ELBO(q_φ), encoder"])
    assert amortisation >= 0 and approximation > -0.05
    assert abs((log_evidence - elbo) - (amortisation + approximation)) < 2e-3  # shown to 3 decimals
    assert trace_names(at, "posterior_iwae")[:2] == ["IWAE(K), encoder proposal",
                                                     "IS(K), Gaussian fitted to HMC samples"]
    assert len(elements(at, "plotly_chart", "posterior_gap_bar")) == 1
    assert "best Gaussian q*, 2σ" in trace_names(at, "posterior_plane")  # q* joins the plane
    assert at.query_params["gaps"] == "1"


def test_hiding_pixels_raises_the_evidence_of_what_is_left():
    """p(x_O) = Σ_{x_M} p(x_O, x_M) ≥ p(x): the observed half is more probable than the whole image."""
    at = posterior_page(model=shipped("mnist-vae-2d"), image="7")
    full = float(metrics(at)["log p(x_O)"])
    at = finish_jobs(at.selectbox(key="posterior_mask").set_value("half").run())
    assert errors(at) == []
    assert at.selectbox(key="posterior_half").value == "top"
    half = float(metrics(at)["log p(x_O)"])
    assert half > full + 10
    assert any("half hidden" in caption for image in at.get("image") for caption in image.captions)
    assert at.query_params["mask"] == "half" and at.query_params["half"] == "top"


def test_a_16d_model_is_viewed_through_principal_axes_or_two_dimensions():
    at = posterior_page(model=shipped("mnist-vae-16d"))
    assert errors(at) == []
    assert at.radio(key="posterior_view").value == "pca"
    assert figure(at, "posterior_plane")["layout"]["xaxis"]["title"]["text"] == "PC1 of the HMC samples"
    assert "log p(x_O)" not in metrics(at)  # no quadrature in 16 dimensions
    assert len(at.multiselect(key="posterior_corner_dims").value) == 4
    assert len(elements(at, "plotly_chart", "posterior_corner")) == 1
    at = finish_jobs(at.radio(key="posterior_view").set_value("dims").run())
    at = finish_jobs(at.selectbox(key="posterior_dim_y").set_value(5).run())
    assert errors(at) == []
    assert figure(at, "posterior_plane")["layout"]["yaxis"]["title"]["text"] == "z5"


def test_a_model_with_trained_hmc_uses_its_step_sizes_and_a_large_scale_diverges():
    at = posterior_page(model=shipped("mnist-hmcvae-2d"))
    assert errors(at) == []
    assert "trained step sizes and inflation" in " ".join(m.value for m in at.markdown)
    assert "initial proposal N(μ, s·σ), 2σ" in trace_names(at, "posterior_plane")
    at = finish_jobs(at.select_slider(key="posterior_step_scale").set_value(8.0).run())
    assert errors(at) == []
    assert "×8" in " ".join(m.value for m in at.markdown)
    assert float(metrics(at)["Mean acceptance"]) < 0.5


def test_the_url_reproduces_the_view():
    at = posterior_page(model=shipped("mnist-vae-2d"), image="5", mask="mcar", rate="30", seed="3", chains="20", t="2")
    assert errors(at) == []
    assert at.number_input(key="posterior_image").value == 5
    assert at.selectbox(key="posterior_mask").value == "mcar" and at.slider(key="posterior_rate").value == 30
    assert at.number_input(key="posterior_seed").value == 3
    assert at.select_slider(key="posterior_chains").value == 20
    assert at.slider(key="posterior_step").value == 2
    assert trace_names(at, "posterior_plane")[-1] == "chains at t = 2"


def test_a_view_without_stored_results_shows_its_progress_then_the_posterior(monkeypatch, tmp_path):
    from vizvae.checkpoint import SHIPPED_DIR, load_checkpoint
    from vizvae.inference.posterior import posterior_chains
    from vizvae.inference.posterior_store import posterior_target

    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path))  # nothing stored yet
    at = open_page("posterior", model=shipped("mnist-vae-2d"), image="11", seed="7", chains="10")
    assert errors(at) == []
    assert [h.value for h in at.header] == []  # the page waits for its numbers, drawing their progress
    (bar,) = at.get("progress")
    assert bar.text.startswith("Computing the posterior")
    assert len(elements(at, "flex_container", "posterior_progress")) == 1
    at = finish_jobs(at)
    assert errors(at) == [] and list(at.get("progress")) == []
    assert [h.value for h in at.header] == ["Posterior and chains", "Marginals", "Chain diagnostics", "Posterior gaps"]
    direct = posterior_chains(posterior_target(load_checkpoint(SHIPPED_DIR / "mnist-vae-2d"), 11, ("none", "", 0.0)),
                              n_chains=10, seed=7)  # what the background computed, by hand
    assert metrics(at)["Mean acceptance"] == f"{float(direct.result.acceptance_probs.mean()):.2f}"


def test_a_ugvae_is_sent_elsewhere():
    at = posterior_page(model=shipped("mnist-ugvae"))
    assert [w.value for w in at.warning] == [
        "The posterior page needs a vae, miwae, pvae, hmcvae, hvae, hhvae, exported or adapter model (this one is a ugvae)."]


def test_an_estimated_evidence_keeps_its_label_short_and_names_its_estimator_below():
    at = posterior_page(model=shipped("mnist-vae-16d"))
    at = finish_jobs(at.toggle(key="posterior_gaps_on").set_value(True).run())
    assert errors(at) == []
    (estimate,) = [m for m in at.metric if m.label == "log p(x_O) ≈"]  # "log p(x_O) ≈ IWAE(5000)" was cut off
    value, se = estimate.value.split(" ± ")  # the estimate and its Monte Carlo standard error
    assert float(value) < 0 and 0 < float(se) < 5 and "Estimated by" in estimate.help
    assert any(c.value.startswith("by ") and "(5000)" in c.value for c in at.caption)
    table = at.dataframe[0].value
    assert any(str(name).startswith("standard error of ") for name in table.iloc[:, 0])


def test_trained_step_sizes_are_compared_with_their_start_and_a_tuned_sampler_is_not_flagged():
    """mnist-hmcvae-2d's shipped sampler: step sizes ≈ 5× their start, acceptance ≈ 0.63. The caption
    gives the growth; the under-tuned warning (acceptance > 0.95 with < 1.5× growth, the rule of
    ``under_tuned``, tested in tests/evaluation/test_hmc_task.py) stays away."""
    from vizvae.checkpoint import SHIPPED_DIR, load_checkpoint
    from vizvae.kernels.hmc import step_size_growth

    model = load_checkpoint(SHIPPED_DIR / "mnist-hmcvae-2d").model
    growth = step_size_growth(model.hmc.step_sizes.detach(), model.initial_step_sizes())
    assert growth > 2.0
    at = posterior_page(model=shipped("mnist-hmcvae-2d"))
    assert errors(at) == []
    captions = " ".join(c.value for c in at.caption)
    assert f"{growth:.2f}× the ones training started from" in captions
    assert not [w for w in at.warning if "under-tuned" in w.value]


def test_chains_that_have_not_mixed_are_said_to_have_not_mixed():
    """mnist-hhvae's shipped first view: 50 chains of T = 10 from the proposal, R-hat far above 1.1
    in every one of the 30 dimensions; the 2-D exact-posterior check finds nothing unvisited there."""
    at = finish_jobs(posterior_page(model=shipped("mnist-hhvae")))
    assert errors(at) == []
    (warning,) = [w.value for w in at.warning if w.value.startswith("The chains have not mixed")]
    rhat = float(warning.split("R-hat is up to ")[1].split(" ")[0])
    shown = float([m.value for m in at.metric if m.label == "Largest R-hat"][0])
    assert rhat == pytest.approx(shown, abs=0.005) and rhat > 1.1 and "of 30 dimension(s)" in warning
    assert not [w for w in at.warning if "never visit" in w.value]
