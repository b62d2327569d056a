"""Reading a safetensors header through ``safe_open``: a length prefix that starts with 0x80 is
not a pickle (regression), and every refusal names what is wrong in one line."""

import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from vizvae.checkpoint import FORMAT, inspect_weights, load_checkpoint, save_checkpoint, validate_checkpoint
from vizvae.errors import CheckpointError
from vizvae.models import VAE, VAEConfig


def tiny_model():
    torch.manual_seed(0)
    return VAE(VAEConfig(input_shape=(1, 6, 6), latent_dim=2, hidden_dims=(8,)))


def save_with_0x80_prefix(model, weights):
    """Grow the metadata until the header length's low byte is 0x80 (the pickle PROTO opcode)."""
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    for pad in range(512):
        save_file(state, str(weights), metadata={"format": FORMAT, "model": "vae", "pad": "x" * pad})
        if weights.read_bytes()[0] == 0x80:
            break
    (header_len,) = struct.unpack("<Q", weights.read_bytes()[:8])
    assert header_len % 256 == 128


def test_header_length_of_128_mod_256_loads(tmp_path):
    model = tiny_model()
    folder = save_checkpoint(model, tmp_path / "ckpt", name="tiny", dataset={"name": "toy"})
    save_with_0x80_prefix(model, folder / "model.safetensors")
    loaded = load_checkpoint(folder).model
    torch.testing.assert_close(loaded.decoder.body[0].weight, model.decoder.body[0].weight)


def test_a_truncated_file_with_a_0x80_prefix_is_called_truncated_not_a_pickle(tmp_path):
    weights = tmp_path / "model.safetensors"
    save_with_0x80_prefix(tiny_model(), weights)
    weights.write_bytes(weights.read_bytes()[:-7])
    with pytest.raises(CheckpointError, match="truncated") as refusal:
        inspect_weights(weights)
    assert "pickle" not in str(refusal.value)


def test_header_names_dtypes_shapes_and_metadata(tmp_path):
    weights = tmp_path / "model.safetensors"
    save_file({"a": torch.zeros(2, 3), "b": torch.zeros(4, dtype=torch.float64)}, str(weights),
              metadata={"model": "vae"})
    header = inspect_weights(weights)
    assert header.tensors == {"a": ("F32", [2, 3]), "b": ("F64", [4])}
    assert header.metadata == {"model": "vae"}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_pickle_of_every_protocol_is_refused_as_a_pickle(tmp_path, protocol):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(pickle.dumps({"decoder.weight": [1.0, 2.0]}, protocol=protocol))
    with pytest.raises(CheckpointError, match="pickle posing as weights") as refusal:
        inspect_weights(weights)
    assert len(str(refusal.value).splitlines()) == 1


@pytest.mark.parametrize("content, reason", [
    (b"", "truncated or empty"),
    (struct.pack("<Q", 5) + b"hello", "not a safetensors file"),
    (struct.pack("<Q", 2) + b"[]", "not a safetensors file"),
    (struct.pack("<Q", 1 << 40) + b"{}", "does not fit"),
])
def test_broken_headers_are_refused_in_one_line(tmp_path, content, reason):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(content)
    with pytest.raises(CheckpointError, match=reason) as refusal:
        inspect_weights(weights)
    assert str(refusal.value).startswith(str(weights)) and len(str(refusal.value).splitlines()) == 1


def test_weights_saved_by_another_model_are_refused(tmp_path):
    model = tiny_model()
    folder = save_checkpoint(model, tmp_path / "ckpt", name="tiny", dataset={"name": "toy"})
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": FORMAT, "model": "hvae"})
    for load in (load_checkpoint, validate_checkpoint):
        with pytest.raises(CheckpointError, match="saved by a 'hvae' model"):
            load(folder)
