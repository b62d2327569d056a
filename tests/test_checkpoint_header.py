"""A safetensors length prefix that starts with 0x80 is not a pickle (regression)."""

import struct

import torch
from safetensors.torch import save_file

from vizvae.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from vizvae.models import VAE, VAEConfig


def test_header_length_of_128_mod_256_loads(tmp_path):
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 6, 6), latent_dim=2, hidden_dims=(8,)))
    folder = save_checkpoint(model, tmp_path / "ckpt", name="tiny", dataset={"name": "toy"})
    weights = folder / "model.safetensors"
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    for pad in range(512):  # grow the metadata until the header length's low byte is 0x80
        save_file(state, str(weights), metadata={"format": FORMAT, "model": "vae", "pad": "x" * pad})
        if weights.read_bytes()[0] == 0x80:
            break
    (header_len,) = struct.unpack("<Q", weights.read_bytes()[:8])
    assert header_len % 256 == 128
    loaded = load_checkpoint(folder).model
    torch.testing.assert_close(loaded.decoder.body[0].weight, model.decoder.body[0].weight)
