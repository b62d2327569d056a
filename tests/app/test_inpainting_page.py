"""The Inpainting page through AppTest: one row per method after Run, edge masks answered with a
message, changed inputs cancelling a run, painted masks and drawn digits, uploads of any size and
colour, models without a predictor, and the Fig. 5.6 set-up."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch

from tests.app.helpers import elements, errors, finish_jobs, open_page, select_in_chart, shipped

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py
SMALL = dict(samples="8", iters="10", props="100")  # URL settings that keep each run short



def inpainting_page(**query_params: str):
    return open_page("inpainting", **{**SMALL, **query_params})


def run(at):
    """Press Run and wait for the results."""
    return finish_jobs(at.button(key="inpaint_run").click().run())


def rows(at) -> list[str]:
    """Keys of the result rows, in order."""
    return sorted((c.key for c in at.get("flex_container") if (c.key or "").startswith("inpaint_row_")),
                  key=lambda key: int(key.rsplit("_", 1)[1]))


def scores(at):
    (table,) = [frame.value for frame in at.dataframe]
    return table


def infos(at) -> str:
    return " ".join(i.value for i in at.info)


def imputed_scores(name: str, methods: list[str], image: int = 0) -> dict[str, dict[str, float]]:
    """Each method's scores by ``impute()`` itself, with the page's defaults (test image ``image``, the
    centred 14 × 14 hole, seed 0) and the SMALL settings: what the page must show."""
    from vizvae.checkpoint import SHIPPED_DIR, checkpoint_dataset, load_checkpoint
    from vizvae.data.masks import box_mask
    from vizvae.inference.imputers import ImputationSettings, impute

    checkpoint = load_checkpoint(SHIPPED_DIR / name)
    dataset = checkpoint_dataset(checkpoint.config)
    x = torch.as_tensor(dataset.x_test[image])[None]
    mask = box_mask((28, 28), 7, 7, 14, 14)
    feature_mean = torch.as_tensor(dataset.x_train.mean(0))
    settings = ImputationSettings(n_samples=int(SMALL["samples"]), seed=0, n_iterations=int(SMALL["iters"]),
                                  n_proposals=int(SMALL["props"]))
    scores = {}
    for method in methods:
        result = impute(checkpoint.model, x, mask, method, settings, feature_mean=feature_mean)
        scores[method] = {"nll": float(result.missing_nll[0]), "mse": float(result.mse[0]),
                          "n_missing": int(result.n_missing[0]), "labels": result.label_probs[0].numpy()}
    return scores


def test_run_shows_one_row_per_method_with_its_scores():
    at = inpainting_page(model=shipped("mnist-hhvae"))
    assert errors(at) == [] and at.title[0].value == "Inpainting"
    assert "Press **Run**" in infos(at) and rows(at) == []
    assert at.multiselect(key="inpaint_methods").value == ["encoder", "hmc", "pseudo_gibbs", "mwg", "sir"]
    at = run(at)
    assert errors(at) == []
    assert rows(at) == [f"inpaint_row_{i}" for i in range(5)]
    table = scores(at)
    assert list(table["row"]) == ["Gaussian encoder", "HMC", "Pseudo-Gibbs", "Metropolis-within-Gibbs",
                                  "Importance sampling (SIR)"]
    assert (table["hidden pixels"] == 196).all()  # the default 14 × 14 hole
    # the page's numbers are impute()'s at the same seed, to float precision
    expected = imputed_scores("mnist-hhvae", ["encoder", "hmc", "pseudo_gibbs", "mwg", "sir"])
    for (_, line), (method, known) in zip(table.iterrows(), expected.items()):
        assert line["NLL (nats)"] == pytest.approx(known["nll"], rel=1e-6), method
        assert line["NLL per hidden pixel"] == pytest.approx(known["nll"] / 196, rel=1e-6), method
        assert line["MSE"] == pytest.approx(known["mse"], rel=1e-6), method
        assert line["predicted label"] == int(np.argmax(known["labels"])), method
        assert line["p(label)"] == pytest.approx(float(known["labels"].max()), rel=1e-6), method
    assert (table["label from"] == "predictor").all()
    assert (table["runtime (s)"] >= 0).all()
    assert len(elements(at, "plotly_chart", "inpaint_labels")) == 1
    pseudo_gibbs_help = at.multiselect(key="inpaint_methods").help
    assert "biased" in pseudo_gibbs_help


def test_edge_masks_are_answered_with_a_message():
    at = inpainting_page(model=shipped("mnist-pvae"), mask="mcar", rate="0", methods="encoder,sir")
    at = run(at)
    assert errors(at) == []
    assert "Nothing is hidden" in infos(at)
    table = scores(at)
    assert (table["hidden pixels"] == 0).all() and (table["NLL (nats)"] == 0).all() and (table["MSE"] == 0).all()
    at.slider(key="inpaint_rate").set_value(100)
    at = run(at)
    assert errors(at) == []
    assert "Everything is hidden" in infos(at) and "prior" in infos(at)
    assert (scores(at)["hidden pixels"] == 784).all() and len(rows(at)) == 2


def test_changing_the_inputs_cancels_the_run_until_run_again():
    at = inpainting_page(model=shipped("mnist-pvae"), methods="zero,mean,encoder")
    at = run(at)
    assert len(rows(at)) == 3
    at = at.number_input(key="inpaint_image").set_value(5).run()
    assert errors(at) == [] and rows(at) == [] and "inputs changed" in infos(at)
    at = run(at)
    assert len(rows(at)) == 3
    table = scores(at)
    assert table["NLL (nats)"].isna()[0] and not table["NLL (nats)"].isna()[1:].any()  # zero fill: no likelihood
    # on auto-run the page follows the inputs
    at.toggle(key="inpaint_auto").set_value(True)
    at = finish_jobs(at.selectbox(key="inpaint_mask").set_value("half").run())
    assert len(rows(at)) == 3 and (scores(at)["hidden pixels"] == 392).all()


def test_a_run_shows_its_progress_and_cancel_then_its_results(monkeypatch):
    monkeypatch.setenv("VIZVAE_MAX_JOB_SECONDS", "3600")  # not refused on the rates of the earlier, small runs
    at = inpainting_page(model=shipped("mnist-pvae"), methods="mwg,encoder", samples="128", iters="500")
    at = at.button(key="inpaint_run").click().run()  # many sweeps: still running when the run ends
    assert errors(at) == [] and rows(at) == []
    (bar,) = at.get("progress")
    assert bar.value < 100 and "Imputing with 2 method(s): Metropolis-within-Gibbs (1 of 2)" in bar.text
    assert len(elements(at, "flex_container", "inpaint_progress")) == 1
    at = at.button(key="inpaint_cancel").click().run()
    assert errors(at) == [] and rows(at) == [] and list(at.get("progress")) == []
    assert "Imputing with 2 method(s): cancelled." in infos(at)
    job = at.session_state["_vizvae_jobs"].get("inpaint")
    assert job.wait(60)  # the thread ends at its next chunk
    at.select_slider(key="inpaint_iterations").set_value(10)
    at.select_slider(key="inpaint_samples").set_value(8)
    at = at.button(key="inpaint_run").click().run()
    at = finish_jobs(at)
    assert errors(at) == [] and len(rows(at)) == 2 and list(at.get("progress")) == []
    assert list(scores(at)["row"]) == ["Metropolis-within-Gibbs", "Gaussian encoder"]


def test_work_over_the_cap_is_refused_before_it_starts(monkeypatch):
    from vizvae.jobs import RATES

    monkeypatch.setenv("VIZVAE_MAX_JOB_SECONDS", "1")
    monkeypatch.setattr(RATES, "_rates", {"inpaint": [1.0]})  # as if one pass took a second
    at = inpainting_page(model=shipped("mnist-pvae"), methods="sir", props="5000")
    at = at.button(key="inpaint_run").click().run()
    assert rows(at) == [] and list(at.get("progress")) == []
    assert any("over the 1.0 s one interaction may start (VIZVAE_MAX_JOB_SECONDS)" in w.value for w in at.warning)
    assert at.session_state["_vizvae_jobs"].get("inpaint") is None


def test_a_painted_mask_hides_the_selected_pixels():
    at = inpainting_page(model=shipped("mnist-pvae"), mask="paint", methods="encoder")
    assert errors(at) == []
    at = at.button(key="inpaint_reveal_all").click().run()
    assert "0 of 784 pixels hidden." in [c.value for c in at.caption]
    at = select_in_chart(at, "inpaint_mask_canvas", [0, 1, 2, 30, 31])
    assert errors(at) == [] and "5 of 784 pixels hidden." in [c.value for c in at.caption]
    at = run(at)
    assert (scores(at)["hidden pixels"] == 5).all()
    at = at.button(key="inpaint_hide_all").click().run()
    assert "784 of 784 pixels hidden." in [c.value for c in at.caption]


def test_a_drawn_digit_is_inpainted():
    at = inpainting_page(model=shipped("mnist-pvae"), source="draw", methods="encoder,hmc")
    assert errors(at) == []
    at.checkbox(key="inpaint_draw_thick").uncheck()
    at = select_in_chart(at, "inpaint_draw_canvas", [14 * 28 + c for c in range(8, 20)])  # a bar
    assert errors(at) == []
    at = run(at)
    assert errors(at) == [] and len(rows(at)) == 2
    # the bar lies in row 14, inside the default hole (rows and columns 7–20): 12 true ones to recover
    mse = scores(at)["MSE"]
    assert (mse > 0).all() and (mse < 12 / 196 + 0.1).all()


def test_uploads_of_any_size_and_colour_are_converted_with_a_note():
    from PIL import Image

    picture = Image.new("RGB", (90, 60), (250, 250, 250))  # a dark digit on paper, wrong size, in colour
    for x in range(30, 60):
        for y in range(10, 50):
            if abs(x - 45) < 5:
                picture.putpixel((x, y), (10, 10, 60))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    at = inpainting_page(model=shipped("mnist-pvae"), source="upload", methods="encoder")
    assert "Upload an image" in infos(at)
    at.file_uploader(key="inpaint_upload").set_value(("one.png", buffer.getvalue(), "image/png"))
    at = at.run()
    assert errors(at) == []
    note = infos(at)
    assert "converted from 90×60 RGB to 28×28 grey" in note and "inverted" in note and "binarised" in note
    at = run(at)
    assert errors(at) == [] and len(rows(at)) == 1
    at.file_uploader(key="inpaint_upload").set_value(("broken.png", b"not an image at all", "image/png"))
    at = at.run()
    assert [e.value for e in at.exception] == []
    assert any("could not be used" in e.value for e in at.error)


def test_a_decompression_bomb_upload_is_refused_with_the_limit_and_no_traceback():
    from tests.data.bombs import png_bomb

    at = inpainting_page(model=shipped("mnist-pvae"), source="upload", methods="encoder")
    at.file_uploader(key="inpaint_upload").set_value(("bomb.png", png_bomb(), "image/png"))
    at = at.run()
    assert not at.exception
    (error,) = [re.sub(r"\\(.)", r"\1", e.value) for e in at.error]  # as shown: markdown escapes removed
    assert "bomb.png" in error and "declares 900,000,000 pixels, over the limit of 25,000,000 pixels" in error
    assert "VIZVAE_MAX_IMAGE_PIXELS" in error and "Traceback" not in error and "/" not in error.split("(")[0]


def test_a_model_without_a_predictor_labels_with_the_digit_classifier_and_fig56_compares_models():
    at = inpainting_page(model=shipped("mnist-vae-16d"), methods="encoder")
    at = at.button(key="inpaint_fig56").click().run()
    assert at.multiselect(key="inpaint_models").value == ["mnist-pvae", "mnist-hvae", "mnist-hmcvae", "mnist-hhvae"]
    at = run(at)
    assert errors(at) == []
    table = scores(at)
    assert list(table["row"]) == ["Gaussian encoder", "mnist-pvae · Gaussian encoder", "mnist-hvae · Gaussian encoder",
                                  "mnist-hmcvae · HMC", "mnist-hhvae · HMC"]
    assert list(table["label from"]) == ["digit classifier"] + ["predictor"] * 4
    assert np.isfinite(table["NLL (nats)"].to_numpy(dtype=float)).all()


def test_mwg_and_sir_on_mnist_hhvae_warn_with_their_numbers():
    # the encoder is a poor independence proposal on this model: MWG's chains never move, SIR's
    # weights collapse on a couple of draws; each row says so with its own numbers
    at = run(inpainting_page(model=shipped("mnist-hhvae"), methods="encoder,mwg,sir"))
    assert errors(at) == []
    warnings = [w.value for w in at.warning]
    assert any("Metropolis-within-Gibbs accepted" in w and "moves per chain in 10 sweeps" in w for w in warnings)
    assert any("effective sample size of" in w and "of 100 proposals" in w for w in warnings)
    assert len([w for w in warnings if "Metropolis" in w or "effective sample size" in w]) == 2  # not the encoder


def test_the_first_run_on_a_shipped_model_reads_the_stored_result_and_other_runs_are_stored(monkeypatch, tmp_path):
    """The page's first view of mnist-hhvae is shipped (``precompute --tasks inpainting``): Run answers
    from it with no computation, and its numbers are ``impute()``'s. A run of other settings is
    computed once, kept in the user cache, and read from there by the next visitor."""
    import pages.inpainting as page
    from vizvae.checkpoint import SHIPPED_DIR, checkpoint_dataset, load_checkpoint
    from vizvae.evaluation import inpainting_store

    def no_work(*args, **kwargs):
        raise AssertionError("computed what was stored")

    checkpoint = load_checkpoint(SHIPPED_DIR / "mnist-hhvae")
    dataset = checkpoint_dataset(checkpoint.config)
    x, observed = inpainting_store.default_inputs(dataset.x_test, dataset.image_shape)
    rows_ = [("mnist-hhvae", m) for m in inpainting_store.DEFAULT_VIEW["methods"]]
    params = inpainting_store.result_params(x, observed, rows_, inpainting_store.DEFAULT_VIEW["settings"])
    assert inpainting_store.load(checkpoint.path, params) is not None, "run `python -m vizvae precompute`"

    monkeypatch.setattr(page, "inpaint_rows", no_work)
    at = open_page("inpainting", model="mnist-hhvae")
    at = at.button(key="inpaint_run").click().run()  # no job to wait for
    assert errors(at) == [] and at.get("progress") == []
    assert rows(at) == [f"inpaint_row_{i}" for i in range(5)]
    stored_nll = scores(at)["NLL (nats)"].to_numpy()

    monkeypatch.undo()
    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path))
    at = run(inpainting_page(model="mnist-hhvae", methods="encoder,hmc"))  # SMALL settings: computed
    computed = scores(at)["NLL (nats)"].to_numpy()
    assert len(computed) == 2 and any(tmp_path.rglob("inpainting-*.npz"))
    monkeypatch.setattr(page, "inpaint_rows", no_work)
    again = inpainting_page(model="mnist-hhvae", methods="encoder,hmc")
    again = again.button(key="inpaint_run").click().run()
    np.testing.assert_array_equal(scores(again)["NLL (nats)"].to_numpy(), computed)
    assert stored_nll.shape == (5,) and np.isfinite(stored_nll).all()
