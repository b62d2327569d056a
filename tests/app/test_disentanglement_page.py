"""The disentanglement page on the shipped shapes models (β = 1, 4, 10)."""

import json

from tests.app.helpers import elements, errors, open_page, shipped
from vizvae.checkpoint import SHIPPED_DIR

SHAPES = ["shapes-vae-b1", "shapes-betavae-b4", "shapes-betavae-b10"]
UGVAE = "shapes-ugvae"  # in the table and the switch buttons, not on the β axis


def disentanglement_page(**query_params: str):
    return open_page("disentanglement", **query_params)


def stored(name: str) -> dict:
    return json.loads((SHIPPED_DIR / shipped(name) / "config.json").read_text())["evaluation"]


def test_page_shows_the_selected_shapes_model_with_its_stored_metrics():
    at = disentanglement_page(model=shipped("shapes-betavae-b4"))
    assert errors(at) == []
    assert at.title[0].value == "Disentanglement"
    metrics = {m.label: m.value for m in at.metric}
    evaluation = stored("shapes-betavae-b4")
    assert metrics["model · β"] == "β = 4"
    assert metrics["MIG"] == f"{evaluation['mig']:.3f}"
    assert metrics["disentanglement"] == f"{evaluation['dci_disentanglement']:.3f}"
    assert metrics["informativeness"] == f"{evaluation['dci_informativeness']:.3f}"
    assert metrics["active units"] == f"{evaluation['active_units']} / 10"
    assert {b.key for b in at.get("download_button")} >= {"disentanglement_gif", "disentanglement_png"}
    assert len(elements(at, "plotly_chart", "disentanglement_heatmap")) == 1
    assert len(elements(at, "plotly_chart", "disentanglement_beta_chart")) == 1
    assert len(at.get("image")) == 2 + len(SHAPES)  # start image, traversal, one traversal per β
    table = at.dataframe[0].value
    # the UG-VAE has no KL weight (its β is the global latent): a dash, never "None"
    assert table["model"].tolist() == SHAPES + [UGVAE] and table["KL weight β"].tolist() == ["1", "4", "10", "— (none)"]
    # the caption under the β chart says what the chart shows, from the stored metrics
    informativeness = [stored(name)["dci_informativeness"] for name in SHAPES]
    sentence = next(c.value for c in at.caption if "On these models" in c.value)
    assert "informativeness drops" not in sentence
    assert (f"DCI informativeness is flat ({min(informativeness):.2f}–{max(informativeness):.2f})" in sentence) == (
        max(informativeness) - min(informativeness) < 0.05)
    assert table["MIG"].tolist() == [stored(name)["mig"] for name in SHAPES + [UGVAE]]


def test_start_image_and_range_redraw_the_traversal_and_go_to_the_url():
    at = disentanglement_page(model=shipped("shapes-betavae-b10"))
    before = at.get("image")[1].value
    at.selectbox(key="disentanglement_base").set_value(3)
    at.slider(key="disentanglement_span").set_value(1.5)
    at.run()
    assert errors(at) == []
    assert at.get("image")[1].value != before
    assert at.query_params["image"] == "3" and at.query_params["range"] == "1.5"
    inactive_rows = at.toggle(key="disentanglement_inactive").set_value(True).run()
    assert errors(inactive_rows) == []


def test_a_model_without_factors_shows_the_best_shapes_model_and_offers_a_switch():
    at = disentanglement_page(model=shipped("mnist-vae-2d"))
    assert errors(at) == []
    best = max(SHAPES + [UGVAE], key=lambda name: stored(name)["mig"])
    assert any(f"showing **{best}**" in c.value for c in at.caption)
    at.button(key="disentanglement_switch_shapes-vae-b1").click().run()
    assert errors(at) == []
    assert at.session_state["model_picker"] == "shapes-vae-b1"
    assert {m.label: m.value for m in at.metric}["model · β"] == "β = 1"


def test_the_ugvae_renders_with_its_local_latents():
    at = disentanglement_page(model=shipped(UGVAE))
    assert errors(at) == []
    metrics = {m.label: m.value for m in at.metric}
    evaluation = stored(UGVAE)
    assert metrics["model · β"] == "UG-VAE"
    assert metrics["MIG"] == f"{evaluation['mig']:.3f}"
    assert metrics["active units"] == f"{evaluation['active_units']} / 10"
    assert len(at.get("image")) == 2 + len(SHAPES)  # the β tab compares the β-VAEs only
