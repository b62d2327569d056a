"""``python -m vizvae models``: a header, aligned columns, no torch import; and a saved checkpoint's
files all readable alike."""

import os
import stat
import subprocess
import sys
from pathlib import Path

from vizvae.__main__ import MODELS_HEADER, models_table
from vizvae.checkpoint import CheckpointInfo, save_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def info(name: str, dataset: str, latent: list[int], elbo: float | None) -> CheckpointInfo:
    return CheckpointInfo(name=name, model="ugvae", dataset=dataset, latent_dims=latent, path=str(ROOT / "x" / name),
                          size_bytes=2_460_000, shipped=True, evaluation={} if elbo is None else {"test_elbo": elbo})


def test_the_listing_has_a_header_and_every_column_starts_at_the_same_place():
    lines = models_table([info("mnist-vae-2d", "mnist", [2], -147.609),
                          info("mnist-digits-ugvae", "mnist+digits", [20, 20], -97.284),
                          info("toy", "t", [3], None)]).splitlines()
    assert lines[0].split()[:3] == ["name", "model", "dataset"] and len(lines) == 4
    for column in ("model", "dataset", "latent", "path"):
        start = lines[0].index(column)
        for line in lines[1:]:
            assert line[start - 2:start] == "  " and line[start] != " ", (column, line)
    assert "mnist+digits  20,20" in lines[2]
    assert lines[1].split()[-3:-1] == ["MB", "-147.61"] and lines[3].split()[-2] == "-"
    assert lines[1].endswith(os.path.join("x", "mnist-vae-2d"))  # relative to the working directory
    assert len(MODELS_HEADER) == len(lines[0].split()) - 1  # "test ELBO" is two words


def test_listing_the_models_never_imports_torch():
    code = ("import sys; from vizvae.__main__ import main; main(['models']); "
            "print('TORCH' if 'torch' in sys.modules else 'LIGHT')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "LIGHT" and lines[0].startswith("name") and any("mnist-digits-ugvae" in s for s in lines)


def test_the_weights_file_gets_the_mode_of_the_config_beside_it(tmp_path):
    import torch

    from vizvae.models import VAE, VAEConfig

    torch.manual_seed(0)
    umask = os.umask(0o022)
    try:
        folder = save_checkpoint(VAE(VAEConfig(input_shape=(1, 4, 4), latent_dim=2, hidden_dims=(4,))),
                                 tmp_path / "c", name="c", dataset={"name": "toy"})
    finally:
        os.umask(umask)
    weights, config = (stat.S_IMODE((folder / name).stat().st_mode) for name in ("model.safetensors", "config.json"))
    assert weights == config == 0o644
