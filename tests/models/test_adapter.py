"""VAEs brought with their own Python adapter (``vizvae.models.adapter``): imported from the command
line, the adapter runs only where the operator allows it, and never once changed since import."""

from __future__ import annotations


import pytest
import torch
from safetensors.torch import save_file

from vizvae.__main__ import main
from vizvae.checkpoint import CheckpointError, load_checkpoint

ADAPTER = '''
from pathlib import Path
import torch

Path(__file__).with_name("ran").touch()  # shows when this file's code has run


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = torch.nn.Linear(64, 6)
        self.dec = torch.nn.Linear(3, 64)

    def encode(self, x):
        out = self.enc(x)
        return out[:, :3], out[:, 3:]

    def decode(self, z):
        return self.dec(z)


def build():
    return Net()
'''


@pytest.fixture()
def imported(tmp_path, monkeypatch):
    monkeypatch.delenv("VIZVAE_TRUSTED_ADAPTERS", raising=False)
    source = tmp_path / "src"
    source.mkdir()
    (source / "my_vae.py").write_text(ADAPTER)
    torch.manual_seed(0)
    weights = {"enc.weight": torch.randn(6, 64), "enc.bias": torch.randn(6), "dec.weight": torch.randn(64, 3),
               "dec.bias": torch.randn(64)}
    save_file(weights, str(source / "w.safetensors"))
    out = tmp_path / "models" / "mine"
    assert main(["import", "--adapter", f"{source / 'my_vae.py'}:build", "--weights", str(source / "w.safetensors"),
                 "--input-shape", "1,8,8", "--latent-dim", "3", "--dataset", "digits", "--out", str(out)]) == 0
    (out / "ran").unlink(missing_ok=True)
    return out, weights


def test_the_command_line_runs_the_adapter_and_gets_its_weights(imported):
    out, weights = imported
    model = load_checkpoint(out, trust_code=True).model
    x = torch.rand(5, 64)
    out_layer = x @ weights["enc.weight"].T + weights["enc.bias"]
    assert torch.allclose(model.encode(x).mean, out_layer[:, :3])
    assert torch.allclose(model.decode(torch.zeros(1, 5, 3)).mean, torch.sigmoid(weights["dec.bias"]).expand(1, 5, 64))


def test_the_app_runs_it_only_in_a_trusted_folder(imported, monkeypatch):
    out, _ = imported
    with pytest.raises(CheckpointError, match="VIZVAE_TRUSTED_ADAPTERS"):
        load_checkpoint(out)
    assert not (out / "ran").exists()  # refused before a line of it ran
    monkeypatch.setenv("VIZVAE_TRUSTED_ADAPTERS", str(out.parent.parent / "elsewhere"))
    with pytest.raises(CheckpointError, match="VIZVAE_TRUSTED_ADAPTERS"):
        load_checkpoint(out)
    monkeypatch.setenv("VIZVAE_TRUSTED_ADAPTERS", str(out.parent))
    assert load_checkpoint(out).model.latent_dim == 3 and (out / "ran").exists()


def test_a_changed_adapter_is_refused_unrun(imported):
    out, _ = imported
    (out / "adapter.py").write_text(ADAPTER + "\nprint('one more line')\n")
    with pytest.raises(CheckpointError, match="changed since the checkpoint was imported"):
        load_checkpoint(out, trust_code=True)
    assert not (out / "ran").exists()


def test_an_adapter_that_does_not_fit_is_refused_at_import(tmp_path):
    source = tmp_path / "my_vae.py"
    source.write_text(ADAPTER)
    save_file({"enc.weight": torch.zeros(2, 2)}, str(tmp_path / "w.safetensors"))
    assert main(["import", "--adapter", f"{source}:build", "--weights", str(tmp_path / "w.safetensors"),
                 "--input-shape", "1,8,8", "--latent-dim", "3", "--dataset", "digits", "--out",
                 str(tmp_path / "out")]) == 2
    save_file({"enc.weight": torch.zeros(6, 64), "enc.bias": torch.zeros(6), "dec.weight": torch.zeros(64, 3),
               "dec.bias": torch.zeros(64)}, str(tmp_path / "good.safetensors"))
    assert main(["import", "--adapter", f"{source}:build", "--weights", str(tmp_path / "good.safetensors"),
                 "--input-shape", "1,8,8", "--latent-dim", "3", "--dataset", "mnist", "--out",
                 str(tmp_path / "out")]) == 2  # 784-value items for a 64-value model
    assert main(["import", "--adapter", f"{tmp_path / 'missing.py'}:build", "--weights", "w", "--input-shape", "64",
                 "--latent-dim", "3", "--dataset", "digits", "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()
