"""The Global & local page (UG-VAE, thesis Ch. 4) through AppTest, on the shipped models."""

from tests.app.helpers import elements, errors, open_page, shipped

HEADERS = ["Global rows, local columns", "Clusters", "Structured batches", "Interpolating groups and images",
           "Sample quality"]


def global_local_page(**query_params: str):
    return open_page("global_local", **query_params)


def test_every_section_draws_for_the_shipped_ugvae():
    at = global_local_page(model=shipped("mnist-ugvae"))
    assert errors(at) == []
    assert at.title[0].value == "Global & local latent spaces"
    assert [h.value for h in at.header] == HEADERS
    # UG-VAE grid, ML-VAE grid, β-VAE row, samples per cluster, the two images, their interpolation
    assert len(at.get("image")) == 6
    assert at.selectbox(key="gl_cluster").value == 0 and at.slider(key="gl_steps").value == 7
    assert len(elements(at, "plotly_chart", "gl_cluster_labels")) == 1
    (posterior_map,) = elements(at, "plotly_chart", "gl_posterior_map")
    assert '"mode":"lines"' in posterior_map.proto.spec.replace(" ", "")  # PCA: the 2σ ellipses
    (svm,) = (frame.value for frame in at.dataframe)  # Table 4.2
    assert list(svm.columns) == ["Batch categories", "Classifier", "Train accuracy", "Test accuracy"]
    assert svm["Classifier"].tolist() == ["Linear SVM", "RBF SVM"] * 2  # even vs odd, then with random
    assert svm["Batch categories"].tolist() == ["even (0) vs odd (1)"] * 2 + ["even (0) vs odd (1) vs random (2)"] * 2
    assert any("not Inception" in c.value for c in at.caption)
    assert at.query_params["cluster"] == "0"


def test_the_frechet_table_compares_ugvae_with_its_baselines():
    at = global_local_page(model=shipped("mnist-ugvae"))
    at.slider(key="gl_fd_reps").set_value(2)
    at.button(key="gl_fd_compute").click().run()
    assert errors(at) == []
    fd = at.dataframe[-1].value  # Table 4.1, after the batch table
    assert fd["Method"].tolist() == ["UG-VAE", "ML-VAE", "β-VAE (β = 10)"]
    assert fd["Checkpoint"].tolist() == ["mnist-ugvae", "mnist-mlvae", "mnist-betavae-b10"]
    # each distance once, as mean ± std (not again as two more columns)
    assert list(fd.columns) == ["Method", "Checkpoint", "FD (mean ± std)", "repetitions"]
    means, stds = zip(*(map(float, text.split(" ± ")) for text in fd["FD (mean ± std)"]))
    assert min(means) > 0 and min(stds) >= 0 and (fd["repetitions"] == 2).all()


def test_choosing_another_cluster_redraws_the_grid_and_goes_to_the_url():
    at = global_local_page(model=shipped("mnist-ugvae"))
    before = at.get("image")[0].value
    at.selectbox(key="gl_cluster").select(3).run()
    assert errors(at) == []
    assert at.get("image")[0].value != before
    assert at.query_params["cluster"] == "3"
    at.radio(key="gl_mode").set_value("one dimension").run()
    assert errors(at) == [] and at.selectbox(key="gl_beta_dim").value == 0


def test_tsne_maps_the_batch_posteriors_without_ellipses():
    at = global_local_page(model=shipped("mnist-ugvae"))
    at.radio(key="gl_projection").set_value("tsne").run()
    assert errors(at) == []
    (chart,) = elements(at, "plotly_chart", "gl_posterior_map")
    assert '"mode":"lines"' not in chart.proto.spec.replace(" ", "")  # no uncertainty ellipses in t-SNE


def test_the_url_chooses_the_cluster_and_steps():
    at = global_local_page(model=shipped("mnist-ugvae"), cluster="5", steps="5")
    assert errors(at) == []
    assert at.selectbox(key="gl_cluster").value == 5 and at.slider(key="gl_steps").value == 5


def test_a_rule_that_cannot_fill_a_batch_warns_instead_of_failing():
    at = global_local_page(model=shipped("mnist-ugvae"))
    at.multiselect(key="gl_batch_kinds").set_value(["digit", "odd"]).run()  # ≈100 test images of one digit
    assert errors(at) == []
    assert any("too few for batches of 128" in w.value for w in at.warning)


def test_the_mixed_domain_model_interpolates_between_the_domains():
    at = global_local_page(model=shipped("mnist-digits-ugvae"))
    assert errors(at) == []
    assert at.selectbox(key="gl_group_a").value == "domain:mnist"
    assert at.selectbox(key="gl_group_b").value == "domain:digits"
    assert at.multiselect(key="gl_batch_kinds").value == ["domain:mnist", "domain:digits"]


def test_a_model_without_a_global_space_is_offered_the_ugvae_models():
    at = global_local_page(model=shipped("mnist-vae-2d"))
    assert not at.exception
    (warning,) = at.warning
    assert warning.value == "The global & local page needs a ugvae model (this one is a vae)."
    at.button(key="switch_to_mnist-ugvae_The global & local page").click().run()
    assert at.session_state["model_picker"] == "mnist-ugvae"
    assert errors(at) == [] and at.title[0].value == "Global & local latent spaces"


def test_the_shapes_ugvae_draws_no_digit_counterparts():
    """The ML-VAE and β-VAE beside the grid model 28×28 digits: not drawn beside a 32×32 shapes UG-VAE."""
    at = global_local_page(model=shipped("shapes-ugvae"))
    assert errors(at) == []
    notes = [info.value for info in at.info]
    assert any("ML-VAE counterpart (mnist-mlvae) models mnist images" in note for note in notes)
    assert any("β-VAE counterpart (mnist-betavae-b10) models mnist images" in note for note in notes)
