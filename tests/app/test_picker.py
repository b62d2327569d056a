"""The sidebar model picker: shipped models, pointed-to folders, uploads, and bad checkpoints."""

import json
import pickle

from streamlit.testing.v1 import AppTest

from vizvae.checkpoint import SHIPPED_DIR
from tests.app.helpers import SHIPPED, app, errors, shipped, switch_to


def upload(at: AppTest, files: list[tuple[str, bytes]]) -> AppTest:
    at.sidebar.file_uploader(key="checkpoint_upload").set_value(
        [(name, data, "application/octet-stream") for name, data in files])
    return at.run()


def weights_and_config(name: str) -> list[tuple[str, bytes]]:
    folder = SHIPPED_DIR / shipped(name)
    return [("model.safetensors", (folder / "model.safetensors").read_bytes()),
            ("config.json", (folder / "config.json").read_bytes())]


def test_picker_lists_the_shipped_models_and_starts_on_the_first():
    at = app().run()
    picker = at.sidebar.selectbox(key="model_picker")
    assert picker.options == SHIPPED  # recipe order: the 2-D VAE first
    assert picker.value == "mnist-vae-2d"
    assert errors(at) == []


def test_choosing_another_model_updates_the_page_and_url():
    at = app(model=shipped("mnist-vae-2d")).run()
    at.sidebar.selectbox(key="model_picker").select(shipped("mnist-betavae-16d-b4")).run()
    assert at.title[0].value == "mnist-betavae-16d-b4"
    assert at.query_params["model"] == "mnist-betavae-16d-b4"
    assert {m.label: m.value for m in at.metric}["β (KL weight)"] == "4"


def test_a_pickle_upload_is_refused_and_the_previous_model_stays():
    at = app(model=shipped("mnist-vae-16d")).run()
    config = weights_and_config("mnist-vae-2d")[1]
    upload(at, [("model.safetensors", pickle.dumps({"weights": 1})), config])
    (error,) = at.error
    assert "pickle posing as weights" in error.value and "model.safetensors" in error.value
    assert at.session_state["model_picker"] == "mnist-vae-16d"
    assert at.title[0].value == "mnist-vae-16d" and not at.exception


def test_a_foreign_config_upload_is_refused():
    at = app(model=shipped("mnist-vae-2d")).run()
    weights = weights_and_config("mnist-vae-2d")[0]
    upload(at, [weights, ("config.json", json.dumps({"model_type": "bert"}).encode())])
    assert "not a vizvae checkpoint config" in at.error[0].value
    assert at.session_state["model_picker"] == "mnist-vae-2d"
    # the app keeps working: another page still renders with the previous model
    switch_to(at, "latent_space")
    assert not at.exception and at.radio(key="projection_method").value == "latent"


def test_weights_of_another_model_are_refused():
    at = app(model=shipped("mnist-vae-2d")).run()
    upload(at, [weights_and_config("mnist-vae-16d")[0], weights_and_config("mnist-vae-2d")[1]])
    assert "does not match config.json" in at.error[0].value or "shape" in at.error[0].value
    assert at.session_state["model_picker"] == "mnist-vae-2d"


def test_one_file_alone_waits_for_the_other():
    at = app(model=shipped("mnist-vae-2d")).run()
    upload(at, weights_and_config("mnist-vae-2d")[:1])
    assert errors(at) == []
    assert any("config.json" in c.value for c in at.sidebar.caption)


def test_a_good_upload_is_added_and_selected():
    at = app(model=shipped("mnist-vae-16d")).run()
    upload(at, weights_and_config("mnist-vae-2d"))
    assert errors(at) == []
    ref = at.session_state["model_picker"]
    assert ref not in SHIPPED and ref.endswith(tuple("0123456789abcdef"))
    assert "mnist-vae-2d (uploaded)" in at.sidebar.selectbox(key="model_picker").options
    assert at.title[0].value == "mnist-vae-2d"


def test_a_broken_pointed_folder_shows_the_error_and_keeps_the_model(tmp_path):
    folder = tmp_path / "truncated"
    folder.mkdir()
    files = dict(weights_and_config("mnist-vae-2d"))
    (folder / "config.json").write_bytes(files["config.json"])
    (folder / "model.safetensors").write_bytes(files["model.safetensors"][:5000])
    at = app(model=shipped("mnist-vae-2d")).run()
    at.sidebar.text_input(key="checkpoint_path").input(str(folder))
    at.sidebar.button(key="checkpoint_path_open").click().run()
    assert "truncated" in at.error[0].value and str(folder) in at.error[0].value
    assert at.session_state["model_picker"] == "mnist-vae-2d" and at.title[0].value == "mnist-vae-2d"
    # choosing a model clears the message
    at.sidebar.selectbox(key="model_picker").select(shipped("mnist-vae-16d")).run()
    assert not at.error


def test_a_good_pointed_folder_is_opened(tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    for name, data in weights_and_config("mnist-vae-2d"):
        (folder / name).write_bytes(data)
    at = app(model=shipped("mnist-vae-16d")).run()
    at.sidebar.text_input(key="checkpoint_path").input(str(folder))
    at.sidebar.button(key="checkpoint_path_open").click().run()
    assert errors(at) == []
    assert at.session_state["model_picker"] == str(folder.resolve())
    assert at.query_params["model"] == str(folder.resolve())


def test_a_url_naming_a_missing_folder_says_so_and_falls_back():
    at = app(model="/nonexistent/checkpoint").run()
    assert at.error[0].value.startswith("/nonexistent/checkpoint: neither a checkpoint folder nor a shipped model")
    assert at.session_state["model_picker"] in SHIPPED and not at.exception


def test_a_page_needing_another_model_kind_says_so_and_offers_shipped_ones():
    def page():
        import streamlit as st

        from pages._common import require_model

        st.session_state.setdefault("model_picker", "mnist-vae-16d")
        require_model(kinds=("vae",), min_latent=2, max_latent=2, purpose="This page")
        st.write("page body")

    at = AppTest.from_function(page, default_timeout=60).run()
    assert not at.exception
    assert at.warning[0].value == "This page needs exactly 2 latent dimensions (this one has 16)."
    assert [b.label for b in at.button] == ["Switch to mnist-vae-2d"]
    assert not any(m.value == "page body" for m in at.markdown)  # the page stopped
    at.button[0].click().run()
    assert not at.warning and any(m.value == "page body" for m in at.markdown)


def test_a_kind_no_shipped_model_has_is_named_and_no_switch_is_offered():
    def page():
        import streamlit as st

        from pages._common import require_model

        st.session_state.setdefault("model_picker", "mnist-vae-2d")
        require_model(kinds=("flowvae",), purpose="The flow page")

    at = AppTest.from_function(page, default_timeout=60).run()
    assert at.warning[0].value == "The flow page needs a flowvae model (this one is a vae)."
    assert "No shipped model fits" in at.info[0].value and not at.button
