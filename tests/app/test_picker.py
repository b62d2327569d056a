"""The sidebar model picker: shipped models, pointed-to folders, uploads, and bad checkpoints."""

import json
import os
import pickle
import re
import stat
import tempfile
from pathlib import Path

from streamlit.testing.v1 import AppTest

from vizvae.checkpoint import SHIPPED_DIR
from vizvae.server import CLOSED_DATA_MESSAGE, CLOSED_PATH_MESSAGE
from pages._common import WORD_JOINER
from tests.app.helpers import SHIPPED, app, errors, open_page, shipped, switch_to


def shown(markdown: str) -> str:
    """The text a browser shows for escaped markdown (the pages escape what a visitor supplied)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace(WORD_JOINER, "")


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
    assert "truncated" in at.error[0].value and str(folder) in shown(at.error[0].value)
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


# -- a shared server: the filesystem is not the visitor's ---------------------------------------------------------
def a_checkpoint_copy(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, data in weights_and_config("mnist-vae-2d"):
        (folder / name).write_bytes(data)
    return folder


def probes(tmp_path: Path) -> dict[str, str]:
    """Paths a visitor could try, each of which the old picker answered differently."""
    (tmp_path / "settings.json").write_text(json.dumps({"secret": 1}))
    return {"existing folder": str(tmp_path), "missing": str(tmp_path / "missing"),
            "valid JSON": str(tmp_path / "settings.json"), "a real checkpoint": str(a_checkpoint_copy(tmp_path / "ckpt")),
            "system folder": "/etc", "dots": "../../../../etc"}


def test_a_closed_server_answers_every_url_path_with_one_fixed_message(monkeypatch, tmp_path):
    monkeypatch.setenv("VIZVAE_OPEN_PATHS", "0")
    for what, path in probes(tmp_path).items():
        at = app(model=path).run()
        assert [shown(e.value) for e in at.error] == [CLOSED_PATH_MESSAGE], what
        assert at.session_state["model_picker"] == "mnist-vae-2d" and not at.exception
        assert str(tmp_path) not in str(at.query_params)


def test_a_closed_server_answers_every_typed_path_with_one_fixed_message(monkeypatch, tmp_path):
    monkeypatch.setenv("VIZVAE_OPEN_PATHS", "0")
    at = app(model=shipped("mnist-vae-16d")).run()
    for what, path in probes(tmp_path).items():
        at.sidebar.text_input(key="checkpoint_path").input(path)
        at.sidebar.button(key="checkpoint_path_open").click().run()
        assert [shown(e.value) for e in at.error] == [CLOSED_PATH_MESSAGE], what
        assert at.session_state["model_picker"] == "mnist-vae-16d"


def test_the_open_default_on_localhost_still_opens_any_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("VIZVAE_OPEN_PATHS", raising=False)  # .streamlit/config.toml: server.address localhost
    folder = a_checkpoint_copy(tmp_path / "ckpt")
    at = app(model=str(folder)).run()
    assert errors(at) == [] and at.session_state["model_picker"] == str(folder.resolve())


def test_a_closed_server_opens_its_model_folders_without_showing_their_place(monkeypatch, tmp_path):
    models, private = tmp_path / "models", tmp_path / "private"
    a_checkpoint_copy(models / "team" / "vae2d")
    a_checkpoint_copy(private / "vae2d")
    (models / "link-out").symlink_to(private / "vae2d")
    monkeypatch.setenv("VIZVAE_OPEN_PATHS", "0")
    monkeypatch.setenv("VIZVAE_MODEL_DIRS", os.pathsep.join([str(models), str(tmp_path / "not-there")]))
    at = app(model="team/vae2d").run()
    assert errors(at) == []
    assert at.session_state["model_picker"] == str((models / "team" / "vae2d").resolve())
    assert at.query_params["model"] == "team/vae2d"  # relative to its model folder: no server path in the URL
    assert str(tmp_path) not in " ".join(c.value for c in at.caption)  # the model page shows no folder
    for escape in ("link-out", "team/../../private/vae2d", str(private / "vae2d")):
        refused = app(model=escape).run()
        assert [shown(e.value) for e in refused.error] == [CLOSED_PATH_MESSAGE], escape


def test_a_closed_server_still_takes_uploads_and_keeps_them_out_of_the_url(monkeypatch):
    monkeypatch.setenv("VIZVAE_OPEN_PATHS", "0")
    at = app(model=shipped("mnist-vae-16d")).run()
    upload(at, weights_and_config("mnist-vae-2d"))
    assert errors(at) == [] and at.title[0].value == "mnist-vae-2d"
    assert "model" not in at.query_params  # the upload's folder is private to the session
    other = app(model=at.session_state["model_picker"]).run()  # another visitor given that folder
    assert [shown(e.value) for e in other.error] == [CLOSED_PATH_MESSAGE]


def test_a_url_with_markdown_is_shown_as_typed_not_as_a_link_or_image():
    wanted = "![x](http://evil/x.png) [click](http://evil) www.evil.com me@evil.com"
    at = app(model=wanted).run()
    (error,) = at.error
    assert shown(error.value).startswith(wanted + ": neither a checkpoint folder nor a shipped model")
    assert "](" not in error.value and "http://" not in error.value and "@evil" not in error.value
    assert not re.search(r"(?<!\u2060)www\.", error.value)  # GFM links a bare www. only after a space


def test_uploads_go_to_a_private_folder_of_the_session(monkeypatch):
    at, other = app(model=shipped("mnist-vae-16d")).run(), app(model=shipped("mnist-vae-16d")).run()
    upload(at, weights_and_config("mnist-vae-2d"))
    upload(other, weights_and_config("mnist-vae-2d"))
    folder, other_folder = Path(at.session_state["model_picker"]), Path(other.session_state["model_picker"])
    session = folder.parent
    assert session.parent == Path(tempfile.gettempdir()) and session.name.startswith("vizvae-upload-")
    assert other_folder.parent != session  # the same files, another session: another private folder
    assert stat.S_IMODE(session.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "model.safetensors").stat().st_mode) == 0o600
    assert not (Path(tempfile.gettempdir()) / "vizvae-uploads" / folder.name).exists()


def test_an_upload_over_the_session_cap_is_refused_naming_the_cap(monkeypatch):
    monkeypatch.setenv("VIZVAE_MAX_UPLOAD_MB", "0.01")
    at = app(model=shipped("mnist-vae-16d")).run()
    upload(at, weights_and_config("mnist-vae-2d"))
    assert "capped at 0 MB on this server (VIZVAE_MAX_UPLOAD_MB)" in shown(at.error[0].value)
    assert at.session_state["model_picker"] == "mnist-vae-16d"


def test_inpainting_over_the_samples_cap_is_refused_not_clipped(monkeypatch):
    monkeypatch.setenv("VIZVAE_MAX_SAMPLES", "16")
    at = open_page("inpainting", model=shipped("mnist-vae-2d"), samples="64")
    at = at.button(key="inpaint_run").click().run()
    assert at.select_slider(key="inpaint_samples").value == 64  # the asked value stays, nothing clipped
    assert [w.value for w in at.warning if "cap" in w.value] == [
        "Samples = 64 is over this server's cap of 16 (set VIZVAE_MAX_SAMPLES to raise it)."]
    assert not at.exception


def test_a_closed_server_refuses_an_upload_whose_data_path_probes_its_files(monkeypatch, tmp_path):
    """A config may name the user dataset it was trained on by path; on a closed server that path is
    followed only inside VIZVAE_DATA_DIRS, and every other path gets one message whether it exists or not."""
    monkeypatch.setenv("VIZVAE_OPEN_PATHS", "0")
    data = tmp_path / "data"
    data.mkdir()
    (data / "t.csv").write_text("a,b\n1,2\n")
    files = dict(weights_and_config("mnist-vae-2d"))
    config = json.loads(files["config.json"])

    def with_source(source: str) -> list[tuple[str, bytes]]:
        edited = json.loads(json.dumps(config))
        edited["dataset"]["preprocessing"]["source"] = source
        return [("model.safetensors", files["model.safetensors"]), ("config.json", json.dumps(edited).encode())]

    for source in ("/etc/passwd", str(tmp_path / "missing.csv"), str(data / "t.csv"), "relative.csv"):
        at = upload(app(model=shipped("mnist-vae-16d")).run(), with_source(source))
        assert [shown(e.value) for e in at.error] == [CLOSED_DATA_MESSAGE], source
        assert at.session_state["model_picker"] == shipped("mnist-vae-16d")
    monkeypatch.setenv("VIZVAE_DATA_DIRS", str(data))
    at = upload(app(model=shipped("mnist-vae-16d")).run(), with_source(str(data / "t.csv")))
    assert errors(at) == [] and at.title[0].value == "mnist-vae-2d"
