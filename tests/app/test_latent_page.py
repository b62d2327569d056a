"""The latent-space page through AppTest. Only PCA and the raw latent plane are used here:
UMAP and t-SNE are tested in tests/viz with their disk cache."""

from tests.app.helpers import elements, errors, latent_page, select_in_chart, shipped


def headers(at):
    return [h.value for h in at.header]


def infos(at):
    return " ".join(i.value for i in at.info)


def test_2d_model_shows_the_latent_plane_traversals_and_manifold():
    at = latent_page(model=shipped("mnist-vae-2d"))
    assert errors(at) == []
    assert at.title[0].value == "Latent space"
    assert headers(at) == ["Encoded test set", "Selected points", "Traversals", "Interpolation", "Decoded manifold"]
    method = at.radio(key="projection_method")
    assert method.value == "latent" and method.options[0] == "latent plane (z0, z1)"
    assert len(elements(at, "plotly_chart", "latent_projection")) == 1
    assert "Select a point" in infos(at)
    # traversal grid, single-dimension image, manifold (nothing selected: no pairs, no strips)
    assert len(at.get("image")) == 3
    assert at.slider(key="manifold_size").value == 15
    assert {b.key for b in at.get("download_button")} >= {"projection_csv", "traversal_png", "traversal_csv",
                                                           "manifold_png"}
    assert at.query_params["method"] == "latent"


def test_16d_model_uses_pca_and_offers_a_2d_model_for_the_manifold():
    at = latent_page(model=shipped("mnist-vae-16d"))
    assert errors(at) == []
    method = at.radio(key="projection_method")
    assert method.value == "pca" and "latent" not in method.options
    assert at.slider(key="traversal_rows").value == 10
    (warning,) = at.warning
    assert warning.value == "The decoded manifold needs exactly 2 latent dimensions (this one has 16)."
    switch = at.button(key="switch_to_mnist-vae-2d_The decoded manifold")
    switch.click().run()
    assert at.session_state["model_picker"] == "mnist-vae-2d"
    assert errors(at) == [] and not at.warning


def test_a_session_state_selection_shows_the_point_panel():
    at = latent_page(model=shipped("mnist-vae-16d"), method="pca")
    at.session_state["latent_selection"] = [3]
    at.run()
    assert errors(at) == []
    assert "Select a point" not in infos(at)
    assert len(elements(at, "plotly_chart", "posterior_chart")) == 1
    assert {"selected_png", "posterior_csv"} <= {b.key for b in at.get("download_button")}
    assert at.query_params["points"] == "3"


def test_clicking_a_point_in_the_chart_selects_it():
    at = latent_page(model=shipped("mnist-vae-2d"))
    select_in_chart(at, "latent_projection", [3, 250])
    assert errors(at) == []
    assert at.session_state["latent_selection"] == [3, 250]
    assert at.text_input(key="latent_points").value == "3, 250"
    assert len(elements(at, "plotly_chart", "posterior_chart")) == 1
    assert at.selectbox(key="latent_focus").options == ["3", "250"]
    # two points: both interpolation strips are drawn
    captions = [c for image in at.get("image") for c in image.captions]
    assert "Linear: row 3 → row 250" in captions and "Spherical (slerp): row 3 → row 250" in captions
    assert at.query_params["points"] == "3,250"


def test_typed_indices_select_points():
    at = latent_page(model=shipped("mnist-vae-2d"))
    at.text_input(key="latent_points").input("7, x, 12, 99999").run()
    assert at.session_state["latent_selection"] == [7, 12]
    assert errors(at) == []


def test_the_url_reproduces_the_view():
    at = latent_page(model=shipped("mnist-vae-16d"), method="pca", points="5,9", dim="4", span="2.0", base="origin")
    assert errors(at) == []
    assert at.radio(key="projection_method").value == "pca"
    assert at.session_state["latent_selection"] == [5, 9]
    assert at.selectbox(key="traversal_dim").value == 4
    assert at.slider(key="traversal_span").value == 2.0
    assert at.radio(key="traversal_base").value == "origin"
    # and a changed view is written back
    at.slider(key="traversal_span").set_value(4.0).run()
    assert at.query_params["span"] == "4.0" and at.query_params["points"] == "5,9"


def test_invalid_url_values_fall_back_to_defaults():
    at = latent_page(model=shipped("mnist-vae-2d"), method="mds", points="a,-1", dim="99")
    assert errors(at) == []
    assert at.radio(key="projection_method").value == "latent"
    assert at.session_state["latent_selection"] == []


def test_the_traversal_slider_redecodes_the_image():
    at = latent_page(model=shipped("mnist-vae-16d"))
    single = [image for image in at.get("image") if image.captions[0].startswith("z")]
    before = single[0].value
    at.slider(key="traversal_value").set_value(2.5).run()
    after = [image for image in at.get("image") if image.captions[0].startswith("z")]
    assert after[0].value != before
    assert after[0].captions[0].endswith("= 2.50")  # base: the origin (nothing selected)
    assert at.query_params["offset"] == "2.5"


def test_traversal_rows_follow_average_kl():
    at = latent_page(model=shipped("mnist-vae-16d"))
    options = at.selectbox(key="traversal_dim").options  # formatted "z<j> (KL <kl>)"
    kls = [float(option.split("KL ")[1].rstrip(")")) for option in options]
    assert kls == sorted(kls, reverse=True)


def test_umap_runs_once_under_a_status_then_comes_from_the_disk_cache(monkeypatch, tmp_path):
    import numpy as np

    from vizvae.inference import projection

    calls = []

    def fake_umap(x, seed=0):  # the real one takes minutes on a busy CPU; tests/viz covers it
        calls.append(seed)
        return projection.Projection(np.random.default_rng(seed).normal(size=(len(x), 2)).astype(np.float32), "umap")

    monkeypatch.setitem(projection.METHODS, "umap", fake_umap)
    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(projection.cache, "precomputed_dir", lambda folder: tmp_path / "none")  # nothing shipped
    at = latent_page(model=shipped("mnist-vae-16d"))
    at.radio(key="projection_method").set_value("umap").run()
    assert errors(at) == [] and calls == [0]
    (status,) = at.get("status")
    assert status.label.startswith("UMAP computed in") and status.state == "complete"
    assert [p.suffix for p in tmp_path.glob("*/*")] == [".npz"]
    at.run()
    assert calls == [0] and not at.get("status")
    assert any("UMAP read from the disk cache" in c.value for c in at.caption)
    assert at.query_params["method"] == "umap"
