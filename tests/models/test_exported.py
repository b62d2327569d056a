"""VAEs brought as exported programs (``vizvae.models.exported``): a vizvae VAE exported with
``torch.export`` and loaded back encodes and decodes as the original, and every way an archive
could make ``torch.export.load`` run code is refused before it is called."""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

from vizvae.checkpoint import SHIPPED_DIR, load_checkpoint
from vizvae.models.exported import ExportedConfig, UnsafeProgram, audit_pt2, load_exported_vae


class Encoder(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x):
        posterior = self.vae.encode(x)
        return posterior.mean, 2.0 * posterior.std.log()


class Decoder(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, z):
        return self.vae.decode(z).logits


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exported")
    vae = load_checkpoint(SHIPPED_DIR / "mnist-vae-2d", device="cpu").model.eval()
    batch = torch.export.Dim("batch")
    with torch.no_grad():
        encoder = torch.export.export(Encoder(vae), (torch.rand(4, 784),), dynamic_shapes=({0: batch},))
        decoder = torch.export.export(Decoder(vae), (torch.randn(4, 2),), dynamic_shapes=({0: batch},))
    torch.export.save(encoder, folder / "encoder.pt2")
    torch.export.save(decoder, folder / "decoder.pt2")
    return vae, folder


def test_an_exported_vae_encodes_and_decodes_as_the_original(exported):
    vae, folder = exported
    model = load_exported_vae(folder / "encoder.pt2", folder / "decoder.pt2",
                              ExportedConfig(input_shape=(1, 28, 28), latent_dim=2))
    x = (torch.rand(37, 784) > 0.5).float()
    with torch.no_grad():
        mine, theirs = model.encode(x), vae.encode(x)
        # the same float32 operations, possibly decomposed in another order: rounding, ~1e-6 relative
        assert torch.allclose(mine.mean, theirs.mean, rtol=1e-5, atol=1e-6)
        assert torch.allclose(mine.std, theirs.std, rtol=1e-5, atol=1e-6)
        z = torch.randn(3, 37, 2)  # (samples, batch, latent), as the ELBO decodes
        assert torch.allclose(model.decode(z).mean, vae.decode(z).mean, rtol=1e-5, atol=1e-6)
        ours = model.elbo(x, generator=torch.Generator().manual_seed(1)).elbo
        original = vae.elbo(x, generator=torch.Generator().manual_seed(1)).elbo
        assert torch.allclose(ours, original, rtol=1e-5, atol=1e-4)  # nats: sums of 784 terms of that rounding


def rewritten(source: Path, target: Path, change) -> Path:
    """A copy of an archive with ``change(name, data) -> data | None`` applied (None drops the entry)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as new:
        for info in old.infolist():
            data = change(info.filename, old.read(info))
            if data is not None:
                new.writestr(info.filename, data)
    return target


class Marker:
    def __init__(self, file):
        self.file = file

    def __reduce__(self):
        return (Path.touch, (Path(self.file),))


def test_a_pickle_posing_as_pt2_is_refused_unread(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "model.pt2").write_bytes(pickle.dumps(Marker(str(marker))))
    with pytest.raises(UnsafeProgram, match="not an exported program"):
        audit_pt2(tmp_path / "model.pt2")
    assert not marker.exists()


def test_archives_that_would_run_code_are_refused(exported, tmp_path):
    _, folder = exported
    source = folder / "decoder.pt2"
    marker = tmp_path / "ran"
    evil_inputs = pickle.dumps(Marker(str(marker)))

    def pickled_weights(name, data):
        return data.replace(b'"use_pickle": false', b'"use_pickle": true') if name.endswith("weights_config.json") else data

    def evil_sample_inputs(name, data):
        return evil_inputs if "/data/sample_inputs/" in name else data

    def custom_operator(name, data):
        return data.replace(b"torch.ops.aten.linear.default", b"torch.ops.mine.anything.default") \
            if name.endswith(".json") and "/models/" in name else data

    def extra_file(name, data):
        return data

    cases = {"pickled": (pickled_weights, "stored as a pickle"),
             "inputs": (evil_sample_inputs, "sample inputs are not plain tensors"),
             "operator": (custom_operator, "torch.ops.mine.anything.default")}
    for label, (change, text) in cases.items():
        with pytest.raises(UnsafeProgram, match=text):
            audit_pt2(rewritten(source, tmp_path / f"{label}.pt2", change))
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(tmp_path / "extra.pt2", "w") as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info))
        new.writestr(old.namelist()[0].split("/")[0] + "/extra/run_me.py", "print('hi')")
    with pytest.raises(UnsafeProgram, match="unexpected entry"):
        audit_pt2(tmp_path / "extra.pt2")
    assert not marker.exists()
    # what the audit prevents: torch's own loader unpickles those sample inputs freely
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.export.load(str(tmp_path / "inputs.pt2"))
    except Exception:  # noqa: BLE001 - it may fail afterwards; the pickle has run by then
        pass
    assert marker.exists()


def test_an_imported_checkpoint_loads_renders_and_notices_a_changed_program(exported, tmp_path):
    from vizvae.__main__ import main
    from vizvae.checkpoint import CheckpointError, load_checkpoint as load
    from tests.app.helpers import app, errors, finish_jobs, open_page

    vae, folder = exported
    out = tmp_path / "theirs"
    assert main(["import", "--encoder", str(folder / "encoder.pt2"), "--decoder", str(folder / "decoder.pt2"),
                 "--input-shape", "1,28,28", "--latent-dim", "2", "--dataset", "mnist", "--out", str(out)]) == 0
    assert {"card.md", "preview-prior.png"} <= {p.name for p in out.iterdir()}
    model = load(out).model
    x = (torch.rand(9, 784) > 0.5).float()
    with torch.no_grad():
        assert torch.allclose(model.encode(x).mean, vae.encode(x).mean, rtol=1e-5, atol=1e-6)
    at = app(model=str(out)).run()
    assert errors(at) == [] and at.title[0].value == "theirs"
    for page in ("latent_space", "posterior", "inpainting"):  # the pages of a one-latent image VAE
        at = finish_jobs(open_page(page, model=str(out)).run())
        assert errors(at) == [] and not [w for w in at.warning if "needs" in w.value], page
    # the wrong shapes are refused at import, with both
    assert main(["import", "--encoder", str(folder / "encoder.pt2"), "--decoder", str(folder / "decoder.pt2"),
                 "--input-shape", "1,28,28", "--latent-dim", "3", "--dataset", "mnist", "--out",
                 str(tmp_path / "wrong")]) == 2
    (out / "encoder.pt2").write_bytes((folder / "decoder.pt2").read_bytes())  # swapped behind its back
    with pytest.raises(CheckpointError, match="not the program this checkpoint was imported with"):
        load(out)


def test_an_imported_model_can_be_uploaded_and_its_programs_are_audited(exported, tmp_path):
    from vizvae.__main__ import main
    from tests.app.helpers import app, errors
    from tests.app.test_picker import upload

    _, folder = exported
    out = tmp_path / "uploadable"
    assert main(["import", "--encoder", str(folder / "encoder.pt2"), "--decoder", str(folder / "decoder.pt2"),
                 "--input-shape", "1,28,28", "--latent-dim", "2", "--dataset", "mnist", "--out", str(out)]) == 0
    files = [(name, (out / name).read_bytes()) for name in ("model.safetensors", "config.json")]
    at = upload(app().run(), files + [("my-encoder.pt2", (out / "encoder.pt2").read_bytes()),
                                      ("my-decoder.pt2", (out / "decoder.pt2").read_bytes())])
    assert errors(at) == [] and at.title[0].value == "uploadable"
    assert at.session_state["model_picker"].endswith(tuple("0123456789abcdef"))  # the upload, selected
    # a planted pickle in the programs: refused with the reason, and the app stays up
    with zipfile.ZipFile(out / "decoder.pt2") as old:
        planted = io_bytes(old, lambda name, data: pickle.dumps(Marker(str(tmp_path / "ran")))
                           if "/data/sample_inputs/" in name else data)
    import hashlib

    from safetensors.torch import save as save_bytes

    digests = [hashlib.sha256(data).digest() for data in ((out / "encoder.pt2").read_bytes(), planted)]
    consistent = save_bytes({"anchor": torch.zeros(()),  # weights that vouch for the planted program
                             "program_sha256": torch.tensor([list(d) for d in digests], dtype=torch.uint8)},
                            metadata={"format": "vizvae.checkpoint", "model": "exported"})
    at = upload(app().run(), [("model.safetensors", consistent), files[1],
                              ("encoder.pt2", (out / "encoder.pt2").read_bytes()), ("decoder.pt2", planted)])
    assert any("sample inputs are not plain tensors" in e for e in errors(at)) or any(
        "sample inputs are not plain tensors" in e.value for e in at.sidebar.error)
    assert not (tmp_path / "ran").exists()


def io_bytes(archive: zipfile.ZipFile, change) -> bytes:
    """The archive rewritten in memory with ``change(name, data)`` applied to every entry."""
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as new:
        for info in archive.infolist():
            new.writestr(info.filename, change(info.filename, archive.read(info)))
    return buffer.getvalue()
