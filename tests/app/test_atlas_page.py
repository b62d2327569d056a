"""The Latent atlas page through AppTest: what the canvas is sent, selections from the URL counted
over every point, generated data encoded in the background, searches, and hostile links.

Expected counts are recomputed here from the encoder (``encode_dataset``) and an SVD PCA
(``kernels.pca``), not read from the page's own stores."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from tests.app.helpers import errors, finish_jobs, open_page, shipped
from vizvae.checkpoint import SHIPPED_DIR, checkpoint_dataset, load_checkpoint
from vizvae.inference.latent import encode_dataset
from vizvae.kernels.pca import principal_components

MODEL = "shapes-betavae-b4"


def _find(node, key):
    if getattr(node, "key", None) == key:
        return node
    children = getattr(node, "children", None)
    for child in (children.values() if isinstance(children, dict) else []):
        found = _find(child, key)
        if found is not None:
            return found
    return None


def canvas_payload(at) -> dict:
    element = _find(at._tree, "atlas_chart")
    assert element is not None, "the atlas canvas was not drawn"
    return json.loads(element.proto.json)


def decoded(payload: dict, name: str, dtype) -> np.ndarray:
    return np.frombuffer(base64.b64decode(payload[name]), dtype=dtype)


@pytest.fixture(scope="module")
def test_set_pca():
    """The shipped model's test set encoded and projected by SVD, independently of the page."""
    checkpoint = load_checkpoint(SHIPPED_DIR / shipped(MODEL), device="cpu")
    x_test = checkpoint_dataset(checkpoint.config).x_test
    means = encode_dataset(checkpoint.model, x_test).mean
    return principal_components(means).scores(means), means


def selected_count(at) -> int:
    texts = [m.value for m in at.markdown if "items selected" in m.value or "item selected" in m.value]
    assert texts, "no selection summary on the page"
    return int(texts[0].strip("*").split()[0].replace(",", ""))


def test_the_test_set_atlas_sends_every_point_its_place_and_label(test_set_pca):
    coords, _ = test_set_pca
    at = finish_jobs(open_page("atlas", model=MODEL))
    assert errors(at) == []
    payload = canvas_payload(at)
    rows = decoded(payload, "rows", np.int32)
    assert sorted(rows.tolist()) == list(range(len(coords)))  # 480 points: every one is drawn
    x, y = decoded(payload, "x", np.float32), decoded(payload, "y", np.float32)
    # float32 coordinates of a float64 SVD: the page's PCA (second moments, eigh) agrees to ~1e-6
    # of the spread; 1e-4 leaves room for the sign convention's tie-break, which both share
    assert np.allclose(x, coords[rows, 0], atol=1e-4) and np.allclose(y, coords[rows, 1], atol=1e-4)
    assert payload["legend"]["title"] == "label"
    assert [name for name, _ in payload["legend"]["entries"]] == ["square", "ellipse", "triangle"]
    assert payload["density"].startswith("data:image/png;base64,")
    assert payload["view"][0] <= coords[:, 0].min() and payload["view"][1] >= coords[:, 0].max()


def edge_between(values: np.ndarray, fraction: float) -> float:
    """A box edge in the widest gap between points near ``fraction`` of the way through them: far
    from every point, so float32 rounding of the page's coordinates cannot move one across it."""
    ordered = np.sort(values)
    lo, hi = int(len(ordered) * (fraction - 0.05)), int(len(ordered) * (fraction + 0.05))
    k = lo + int(np.argmax(np.diff(ordered[lo:hi + 1])))
    return round(float(ordered[k] + ordered[k + 1]) / 2, 6)


def test_a_box_in_the_url_selects_every_point_inside_it(test_set_pca):
    coords, _ = test_set_pca
    box = (edge_between(coords[:, 0], 0.3), edge_between(coords[:, 0], 0.7),
           edge_between(coords[:, 1], 0.25), edge_between(coords[:, 1], 0.8))
    inside = ((coords[:, 0] >= box[0]) & (coords[:, 0] <= box[1]) & (coords[:, 1] >= box[2]) & (coords[:, 1] <= box[3]))
    expected = int(inside.sum())
    margin = np.min(np.abs(np.concatenate([coords[:, 0:1] - np.array(box[:2]), coords[:, 1:2] - np.array(box[2:])], 1)))
    assert margin > 1e-4 and 0 < expected < len(coords)  # the page's float32 PCA agrees to ~1e-6
    text = "box:" + ",".join(map(str, box))
    at = finish_jobs(open_page("atlas", model=MODEL, sel=text))
    assert errors(at) == []
    assert selected_count(at) == expected
    assert canvas_payload(at)["selection"] == {"kind": "box", "box": list(box)}
    assert at.query_params["sel"] == text


def test_rows_in_the_url_show_their_posteriors_and_links_to_the_other_pages(test_set_pca):
    _, means = test_set_pca
    at = finish_jobs(open_page("atlas", model=MODEL, sel="rows:3,17"))
    assert errors(at) == []
    assert selected_count(at) == 2
    assert at.selectbox(key="atlas_focus").value == 3
    links = [m.value for m in at.markdown if "Open item" in m.value]
    assert links and "image=3" in links[0] and "/posterior?" in links[0] and "source=test" in links[0]
    # searching from the item: the nearest neighbours of its encoder mean, by brute force
    caption = [c.value for c in at.caption if c.value.startswith("Items and distances")][0]
    distances = np.linalg.norm(means - means[3], axis=1)
    distances[3] = np.inf
    expected = np.argsort(distances, kind="stable")[:20]
    found = [int(part.split(" (")[0]) for part in caption.removeprefix("Items and distances: ").split(", ")]
    assert found[:5] == expected[:5].tolist()  # ties beyond float32 resolution are not expected this early


def test_a_typed_vector_of_the_wrong_length_is_refused_and_one_of_the_right_length_searches(test_set_pca):
    _, means = test_set_pca
    at = finish_jobs(open_page("atlas", model=MODEL))
    at.button_group(key="atlas_query").set_value("vector").run()
    at.text_input(key="atlas_vector").set_value("1, 2, three").run()
    assert any("numbers" in e.value for e in at.error)
    at.text_input(key="atlas_vector").set_value("0 0 0").run()
    assert any("10 dimensions; got 3" in e.value for e in at.error)
    at.text_input(key="atlas_vector").set_value(" ".join(["0"] * 10)).run()
    caption = [c.value for c in at.caption if c.value.startswith("Items and distances")][0]
    first = int(caption.removeprefix("Items and distances: ").split(" (")[0])
    assert first == int(np.argmin(np.linalg.norm(means, axis=1)))
    assert len(canvas_payload(at)["rings"]) > 0  # the neighbours are ringed in the atlas


def test_hostile_links_fall_back_without_an_error():
    at = finish_jobs(open_page("atlas", model=MODEL, data="file:../../etc/passwd", sel="box:nan,1,0,1",
                               view="1,0,0,1", proj="nope", points="7", colour="<b>x</b>"))
    assert errors(at) == []
    assert at.selectbox(key="atlas_data").value == "test"
    assert at.radio(key="atlas_method").value == "pca"
    payload = canvas_payload(at)
    assert payload["selection"] is None and payload["view"][0] < payload["view"][1]
    at = finish_jobs(open_page("atlas", model=MODEL, sel="lasso:" + ";".join(["1e999 0"] * 5)))
    assert errors(at) == [] and canvas_payload(at)["selection"] is None
    for data in ("shapes-7", "file:../../etc/passwd", "shapes-100000"):  # not offered; not generated on this server
        at = open_page("posterior", model=MODEL, data=data, item="3")
        assert at.exception == [] and any("could not be opened" in e.value for e in at.error), data


def test_generated_shapes_are_rendered_and_encoded_in_the_background_then_open_in_inpainting():
    at = finish_jobs(open_page("atlas", model=MODEL, data="shapes-10000"), timeout=300)
    assert errors(at) == []
    assert any("10,000 generated shapes" in c.value for c in at.caption)
    payload = canvas_payload(at)
    assert len(decoded(payload, "rows", np.int32)) == 10_000  # the default limit draws them all
    assert payload["legend"]["title"] == "label"
    at = finish_jobs(open_page("atlas", model=MODEL, data="shapes-10000", colour="col:scale"))
    legend = canvas_payload(at)["legend"]
    low, high = float(legend["entries"][0][0]), float(legend["entries"][-1][0])
    assert 3.0 <= low < 3.01 and 4.99 < high <= 5.0  # scale is drawn uniformly from [3, 5] (10,000 draws)
    inpaint = open_page("inpainting", model=MODEL, source="atlas", data="shapes-10000", item="5")
    assert errors(inpaint) == []
    assert any("Item 5 of the atlas' shapes-10000" in c.value for c in inpaint.caption)
    posterior = finish_jobs(open_page("posterior", model=MODEL, data="shapes-10000", item="5", chains="10"), timeout=300)
    assert errors(posterior) == []
    assert any("Item 5 of the atlas' shapes-10000" in c.value for c in posterior.caption)


def test_t_sne_over_its_limit_is_refused_with_a_reason(monkeypatch):
    monkeypatch.setattr("vizvae.inference.atlas.TSNE_MAX_POINTS", 100)
    at = finish_jobs(open_page("atlas", model=MODEL, proj="tsne"))
    assert errors(at) == []
    assert any("t-SNE is offered up to 100 points" in w.value for w in at.warning)


def test_an_uploaded_image_searches_from_its_encoding_and_a_bad_one_is_refused(test_set_pca):
    from vizvae.viz.images import png_bytes

    _, means = test_set_pca
    checkpoint = load_checkpoint(SHIPPED_DIR / MODEL, device="cpu")
    x = checkpoint_dataset(checkpoint.config).x_test[7]
    at = finish_jobs(open_page("atlas", model=MODEL))
    at.button_group(key="atlas_query").set_value("image").run()
    # test row 7 as a PNG (8-bit grey, light shape on dark: kept as it is): its nearest item is row 7 itself
    png = png_bytes(np.round(np.asarray(x).reshape(32, 32) * 255))
    at.file_uploader(key="atlas_upload").set_value([("seven.png", png, "image/png")]).run()
    assert errors(at) == []
    caption = [c.value for c in at.caption if c.value.startswith("Items and distances")][0]
    assert caption.removeprefix("Items and distances: ").split(" (")[0] == "7"
    at.file_uploader(key="atlas_upload").set_value([("broken.png", b"not an image", "image/png")]).run()
    assert any("broken.png" in e.value and "could not be used" in e.value for e in at.error)
    assert at.exception == []


def test_a_data_file_of_the_servers_data_folders_is_offered_by_name_and_a_misfit_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "shared-data"
    folder.mkdir()
    rng = np.random.default_rng(5)
    items = (rng.uniform(size=(300, 1024)) > 0.9).astype(np.float32)
    np.savez(folder / "dots.npz", x=items, y=np.arange(300) % 4)  # uncompressed: mapped in place
    np.save(folder / "narrow.npy", np.zeros((50, 100), dtype=np.float32))
    (folder / "notes.txt").write_text("not data")
    outside = tmp_path / "elsewhere.npy"
    np.save(outside, np.zeros((10, 1024), dtype=np.float32))
    (folder / "link.npy").symlink_to(outside)  # a link out of the folder is not offered
    monkeypatch.setenv("VIZVAE_DATA_DIRS", str(folder))
    at = finish_jobs(open_page("atlas", model=MODEL))
    options = at.selectbox(key="atlas_data").options
    assert "shared-data/dots.npz" in options and "shared-data/narrow.npy" in options
    assert not [o for o in options if "notes" in o or "link" in o or "elsewhere" in o]
    at = finish_jobs(open_page("atlas", model=MODEL, data="file:shared-data/dots.npz"))
    assert errors(at) == []
    payload = canvas_payload(at)
    assert len(decoded(payload, "rows", np.int32)) == 300
    assert [name for name, _ in payload["legend"]["entries"]] == ["0", "1", "2", "3"]  # its y, as labels
    at = finish_jobs(open_page("atlas", model=MODEL, data="file:shared-data/narrow.npy"))
    assert at.exception == []
    assert any("holds items of 100 values; this model takes 1,024" in e.value for e in at.error)


def test_colouring_by_elbo_computes_it_once_in_the_background_as_the_model_does():
    import torch

    at = finish_jobs(open_page("atlas", model=MODEL, colour="elbo"))
    assert errors(at) == []
    payload = canvas_payload(at)
    assert payload["legend"]["title"] == "ELBO (nats)"
    rows = decoded(payload, "rows", np.int32)
    # recomputed here: the model's own ELBO of the test images, one draw of z each from the same seeded stream
    checkpoint = load_checkpoint(SHIPPED_DIR / MODEL, device="cpu")
    x = torch.as_tensor(checkpoint_dataset(checkpoint.config).x_test, dtype=torch.float32)
    with torch.inference_mode():
        elbo = checkpoint.model.elbo(x, generator=torch.Generator().manual_seed(0)).elbo.numpy()
    low, high = float(payload["legend"]["entries"][0][0]), float(payload["legend"]["entries"][-1][0])
    # the legend prints 4 significant digits
    assert abs(low - elbo[rows].min()) <= 5e-4 * abs(low) and abs(high - elbo[rows].max()) <= 5e-4 * abs(high)
