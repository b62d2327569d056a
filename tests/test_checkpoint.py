import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vizvae.checkpoint import load_checkpoint, save_checkpoint, shipped_checkpoints
from vizvae.errors import CheckpointError
from vizvae.models import VAE, VAEConfig

ROOT = Path(__file__).resolve().parent.parent


def tiny(latent=2):
    torch.manual_seed(0)
    return VAE(VAEConfig(input_shape=(1, 6, 6), latent_dim=latent, hidden_dims=(8,)))


@pytest.fixture()
def ckpt(tmp_path):
    folder = tmp_path / "ckpt"
    save_checkpoint(tiny(), folder, name="tiny", dataset={"name": "toy"}, evaluation={"test_elbo": -1.0})
    return folder


def check(path):
    return subprocess.run([sys.executable, "-m", "vizvae", "check", str(path)], capture_output=True, text=True, cwd=ROOT)


def test_round_trip(ckpt):
    loaded = load_checkpoint(ckpt)
    x = torch.rand(3, 36)
    torch.testing.assert_close(loaded.model.encode(x).mean, tiny().encode(x).mean)
    assert loaded.config["evaluation"]["test_elbo"] == -1.0 and loaded.name == "tiny"
    assert check(ckpt).returncode == 0


class CreatesAFile:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_pickle_posing_as_weights_never_runs(ckpt, tmp_path):
    canary = tmp_path / "pwned"
    (ckpt / "model.safetensors").write_bytes(pickle.dumps(CreatesAFile(str(canary))))
    with pytest.raises(CheckpointError, match="pickle posing as weights"):
        load_checkpoint(ckpt)
    result = check(ckpt)
    assert result.returncode != 0 and "pickle" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not canary.exists()


def test_torch_save_zip_is_refused(ckpt):
    torch.save(tiny().state_dict(), ckpt / "model.safetensors")
    with pytest.raises(CheckpointError, match="zip archive"):
        load_checkpoint(ckpt)


def test_truncated_weights(ckpt):
    path = ckpt / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(ckpt)
    path.write_bytes(data[:5])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(ckpt)
    assert "truncated" in check(ckpt).stderr


def test_unknown_model_class(ckpt):
    config = json.loads((ckpt / "config.json").read_text())
    config["model"] = "diffusion"
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="unknown model class 'diffusion'"):
        load_checkpoint(ckpt)
    assert check(ckpt).returncode != 0


def test_shapes_that_do_not_match_the_config(ckpt, tmp_path):
    save_checkpoint(tiny(latent=5), tmp_path / "other", name="x", dataset={})
    (ckpt / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="has shape .* but config.json builds"):
        load_checkpoint(ckpt)
    result = check(ckpt)
    assert result.returncode != 0 and "shape" in result.stderr


def test_foreign_and_missing_files(ckpt, tmp_path):
    (ckpt / "config.json").write_text('{"hello": "world"}')
    with pytest.raises(CheckpointError, match="not a vizvae checkpoint config"):
        load_checkpoint(ckpt)
    (ckpt / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(ckpt)
    (ckpt / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json: missing"):
        load_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        load_checkpoint(tmp_path / "nowhere")


def test_bad_constructor_arguments(ckpt):
    config = json.loads((ckpt / "config.json").read_text())
    config["config"]["wings"] = 2
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="(do|does) not build a VAE"):
        load_checkpoint(ckpt)


def test_random_bytes_are_not_weights(ckpt):
    (ckpt / "model.safetensors").write_bytes(bytes(range(256)) * 10)
    with pytest.raises(CheckpointError, match="model.safetensors: .*not a safetensors file"):
        load_checkpoint(ckpt)


def test_models_json_lists_the_shipped_models():
    result = subprocess.run([sys.executable, "-m", "vizvae", "models", "--json"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    listing = {entry["name"]: entry for entry in json.loads(result.stdout)}
    for name, latent, beta in [("mnist-vae-2d", [2], 1.0), ("mnist-vae-16d", [16], 1.0), ("mnist-betavae-16d-b4", [16], 4.0)]:
        entry = listing[name]
        assert entry["model"] == "vae" and entry["dataset"] == "mnist" and entry["latent_dims"] == latent
        assert Path(entry["path"]).is_dir() and 0 < entry["size_bytes"] < 5 * 1024 * 1024
        config = json.loads((Path(entry["path"]) / "config.json").read_text())
        assert config["config"]["beta"] == beta
        assert config["evaluation"]["test_elbo"] < 0


def test_every_shipped_checkpoint_loads():
    infos = shipped_checkpoints()
    assert len(infos) >= 3
    for info in infos:  # in-process (a subprocess each would spend most of the time importing torch)
        loaded = load_checkpoint(info.path, device="cpu")
        assert loaded.model.latent_dims == info.latent_dims
    assert check(infos[0].path).returncode == 0


def test_a_model_whose_declared_capabilities_disagree_is_refused_at_load(ckpt, monkeypatch):
    from vizvae.models import MODEL_REGISTRY

    class MislabelledVAE(VAE):
        native_sampler = "hmc"  # claims tuned HMC without declaring TunedHMCModel

    monkeypatch.setitem(MODEL_REGISTRY, "vae", MislabelledVAE)
    with pytest.raises(CheckpointError, match=r"config.json: MislabelledVAE.native_sampler is 'hmc'"):
        load_checkpoint(ckpt)


def test_loading_every_shipped_model_stays_off_torchs_compiler_stack():
    """The shapes-only (meta) build before a load runs no math on meta tensors: that would import
    torch._dynamo and sympy, about 2 s on a page's first visit to a fresh server."""
    import subprocess
    import sys

    from vizvae.checkpoint import REPO_ROOT

    code = ("import sys\nfrom vizvae.checkpoint import load_checkpoint, shipped_checkpoints\n"
            "for info in shipped_checkpoints():\n    load_checkpoint(info.path)\n"
            "print(len(shipped_checkpoints()), sorted(m for m in ('torch._dynamo', 'sympy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    count, imported = result.stdout.strip().split(" ", 1)
    assert int(count) >= 20 and imported == "[]"
