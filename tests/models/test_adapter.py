"""VAEs brought with their own Python adapter (``vizvae.models.adapter``): imported from the command
line, the adapter runs only where the operator allows it, and never once changed since import."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vizvae.__main__ import main
from vizvae.checkpoint import CheckpointError, load_checkpoint
from vizvae.errors import VizvaeError
from vizvae.inference.posterior import PosteriorTarget
from vizvae.models.adapter import AdapterConfig, AdapterVAE, run_adapter

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


# The same network with the two optional methods: log_joint is vizvae's built-in joint (Bernoulli
# likelihood of the decoder's logits, N(0, I) prior) written out independently, plus 3; predict is
# a fixed linear head.
ADAPTER_WITH_EXTRAS = ADAPTER.replace("        self.dec = torch.nn.Linear(3, 64)\n", """\
        self.dec = torch.nn.Linear(3, 64)
        self.head = torch.nn.Linear(64, 2)

    def log_joint(self, x, z):
        logits = self.dec(z)
        log_likelihood = (x * logits - torch.nn.functional.softplus(logits)).sum(-1)
        log_prior = (-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1)
        return log_likelihood + log_prior + 3.0

    def predict(self, x):
        return self.head(x)
""").replace("import torch\n", "import math\nimport torch\n", 1)


def random_weights(**extra: torch.Tensor) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {"enc.weight": torch.randn(6, 64), "enc.bias": torch.randn(6), "dec.weight": torch.randn(64, 3),
            "dec.bias": torch.randn(64), **extra}


def import_adapter(folder: Path, code: str, weights: dict[str, torch.Tensor]) -> tuple[int, Path]:
    """``python -m vizvae import --adapter`` of ``code`` with ``weights``: (exit status, checkpoint folder)."""
    source = folder / "src"
    source.mkdir()
    (source / "my_vae.py").write_text(code)
    save_file(weights, str(source / "w.safetensors"))
    out = folder / "models" / "mine"
    status = main(["import", "--adapter", f"{source / 'my_vae.py'}:build", "--weights", str(source / "w.safetensors"),
                   "--input-shape", "1,8,8", "--latent-dim", "3", "--dataset", "digits", "--out", str(out)])
    (out / "ran").unlink(missing_ok=True)
    return status, out


@pytest.fixture()
def imported(tmp_path, monkeypatch):
    monkeypatch.delenv("VIZVAE_TRUSTED_ADAPTERS", raising=False)
    weights = random_weights()
    status, out = import_adapter(tmp_path, ADAPTER, weights)
    assert status == 0
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


def test_the_adapters_own_log_joint_is_the_models_joint(tmp_path):
    head = {"head.weight": torch.zeros(2, 64), "head.bias": torch.zeros(2)}
    status, out = import_adapter(tmp_path, ADAPTER_WITH_EXTRAS, random_weights(**head))
    assert status == 0
    model = load_checkpoint(out, trust_code=True).model
    assert model.has_own_log_joint
    x = torch.rand(5, 64)
    z = torch.randn(4, 5, 3)  # (chains, batch, latent), as HMC asks
    built_in = model.log_likelihood(x, None, z) + model.log_prior(z)  # the joint without the adapter's
    # float32 keeps ~7 significant digits: each joint is a sum of 64 likelihood terms and 3 prior
    # terms, ~70 in size (last place ~8e-6), summed in another order and with softplus instead of
    # vizvae's BCE, so the two differ by a few last places (≤ 2e-5 over 50 seeds); 1e-4 absolute
    # allows that rounding and nothing like the +3.0 being checked.
    assert torch.allclose(model.log_joint(x, None, z), built_in + 3.0, rtol=0, atol=1e-4)
    assert torch.allclose(model.log_joint(x, torch.ones_like(x, dtype=torch.bool), z), built_in + 3.0, rtol=0, atol=1e-4)
    row = PosteriorTarget(model, x[1])  # one row against latents of any leading shape
    assert torch.allclose(row.log_joint(z[:, 1]), built_in[:, 1] + 3.0, rtol=0, atol=1e-4)
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[0, 0] = False
    with pytest.raises(VizvaeError, match="missing entries"):
        model.log_joint(x, mask, z)


def test_a_log_joint_of_the_wrong_shape_is_refused(tmp_path, capsys):
    code = ADAPTER + """
def wrong_shape(x, z):
    return torch.zeros(len(x), 1)


Net.log_joint = lambda self, x, z: wrong_shape(x, z)
"""
    status, out = import_adapter(tmp_path, code, random_weights())
    assert status == 2 and not out.exists()
    assert "log_joint returned torch.float32 of shape (2, 1); expected floating point of shape (2)" \
        in capsys.readouterr().err
    model = AdapterVAE(AdapterConfig(input_shape=(64,), latent_dim=3), run_adapter(tmp_path / "src" / "my_vae.py",
                                                                                   "build"))
    with pytest.raises(VizvaeError, match=r"log_joint returned .* shape \(5, 1\)"):
        model.log_joint(torch.rand(5, 64), None, torch.randn(5, 3))


def test_predict_gives_the_networks_predictions(tmp_path):
    head_weight, head_bias = torch.arange(128.0).reshape(2, 64) / 100, torch.tensor([1.0, -2.0])
    status, out = import_adapter(tmp_path, ADAPTER_WITH_EXTRAS,
                                 random_weights(**{"head.weight": head_weight, "head.bias": head_bias}))
    assert status == 0
    model = load_checkpoint(out, trust_code=True).model
    x = torch.zeros(3, 1, 8, 8)
    x[0, 0, 0, :2] = 1.0  # features 0 and 1: 0.00 + 0.01 and 0.64 + 0.65 on the two targets
    x[2] = 1.0  # every feature: the row sums of the weights
    expected = torch.tensor([[1.01, -2.0 + 1.29], [1.0, -2.0], [1.0 + 20.16, -2.0 + 61.12]])
    assert model.can_predict and torch.allclose(model.predict(x), expected, atol=1e-5)


def test_without_the_optional_methods_the_built_in_joint_stays(imported):
    out, _ = imported
    model = load_checkpoint(out, trust_code=True).model
    x, z = torch.rand(5, 64), torch.randn(5, 3)
    assert not model.has_own_log_joint and not model.can_predict
    assert torch.equal(model.log_joint(x, None, z), model.log_likelihood(x, None, z) + model.log_prior(z))
    with pytest.raises(VizvaeError, match="no predict"):
        model.predict(x)


def test_a_trusted_adapter_model_opens_every_page_of_a_one_latent_image_vae(imported, monkeypatch):
    from tests.app.helpers import errors, finish_jobs, open_page

    out, _ = imported
    monkeypatch.setenv("VIZVAE_TRUSTED_ADAPTERS", str(out.parent))
    for page in ("latent_space", "atlas", "posterior", "inpainting"):
        at = finish_jobs(open_page(page, model=str(out)).run())
        refusals = [m.value for m in [*at.warning, *at.info] if "model (this one is" in m.value]
        assert errors(at) == [] and refusals == [], page  # (the 2-D manifold section may say it needs 2-D)
