"""A VAE brought as two exported programs (``torch.export``, ``.pt2``): an encoder
x (batch, features) -> (mean, log_var) (batch, latent) and a decoder z (batch, latent) -> the
likelihood's parameters (batch, features): Bernoulli logits, or a Gaussian mean. No Python from
the files runs, so this path is open to uploads.

What ``torch.export.load`` can execute, and what ``audit_pt2`` therefore refuses first (read from
torch 2.13's ``export/pt2_archive/_package.py`` and ``_export/serde/serialize.py``):

* a weight or constant stored with ``use_pickle: true`` is read by ``torch.load(weights_only=False)``
  — arbitrary code: refused, every entry of the weight and constant configs must say ``false``;
* the sample inputs (``data/sample_inputs/*.pt``) are a ``torch.save`` pickle, loaded with
  ``weights_only=True`` and, **if that fails, again with ``weights_only=False``**: vizvae loads them
  itself with ``weights_only=True`` first and refuses the file if that fails, so the fallback
  never runs;
* ``extra/`` files and TorchScript objects (custom classes) carry code or pickles: refused;
* graph nodes name their operators; deserialising resolves the names against operators already
  registered in this process. Only ``torch.ops.aten``, ``torch.ops.prims`` and Python's
  ``operator`` module are accepted, so no custom operator (whatever code registered it) is called.

Beyond that the archive is data: JSON describing the graph, and raw little-endian tensor bytes.
A file that is not a zip archive (e.g. a pickle renamed ``.pt2``) is refused before anything is read.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from vizvae.errors import VizvaeError
from vizvae.models.base import DataConfig, LatentVariableModel
from vizvae.models.distributions import BernoulliLikelihood, GaussianLikelihood, Likelihood, gaussian_from_logvar

PROGRAM_FILES = ("encoder.pt2", "decoder.pt2")  # in an imported checkpoint's folder
MAX_PT2_BYTES = 2 * 1024 ** 3
MAX_JSON_BYTES = 256 * 1024 ** 2
ALLOWED_TARGETS = ("torch.ops.aten.", "torch.ops.prims.", "_operator.", "operator.")
DATA_FILES = ("archive_format", "archive_version", ".data/version", "byteorder", ".data/serialization_id")


class UnsafeProgram(VizvaeError):
    """An exported program that could run code when loaded, or is not one at all."""


def _json(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> Any:
    if info.file_size > MAX_JSON_BYTES:
        raise UnsafeProgram(f"{path}: {info.filename} is larger than any exported program's description")
    try:
        return json.loads(archive.read(info))
    except ValueError:
        raise UnsafeProgram(f"{path}: {info.filename} is not valid JSON") from None


def _targets(node_tree: Any) -> Iterator[str]:
    """Every ``target`` string in a serialised graph."""
    if isinstance(node_tree, dict):
        for key, value in node_tree.items():
            if key == "target" and isinstance(value, str):
                yield value
            else:
                yield from _targets(value)
    elif isinstance(node_tree, list):
        for value in node_tree:
            yield from _targets(value)


def audit_pt2(path: str | Path) -> None:
    """Refuse (``UnsafeProgram``, one line) an archive ``torch.export.load`` could run code from."""
    path = Path(path)
    if path.stat().st_size > MAX_PT2_BYTES:
        raise UnsafeProgram(f"{path}: larger than {MAX_PT2_BYTES // 1024 ** 3} GiB")
    if not zipfile.is_zipfile(path):
        raise UnsafeProgram(f"{path}: not an exported program (.pt2 is a zip archive; this is not one)")
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            parts = info.filename.split("/", 1)
            inner = parts[1] if len(parts) == 2 else ""
            if inner in DATA_FILES or inner.endswith("/") or inner.startswith("data/weights/weight_") \
                    or inner.startswith("data/constants/tensor_"):
                continue
            if inner.startswith("models/") and inner.endswith(".json"):
                bad = sorted({t for t in _targets(_json(archive, info, path)) if not t.startswith(ALLOWED_TARGETS)})
                if bad:
                    raise UnsafeProgram(f"{path}: the graph calls {', '.join(bad[:3])}: only aten, prims and "
                                        "Python operators are loaded")
            elif inner.endswith("_config.json") and inner.startswith(("data/weights/", "data/constants/")):
                entries = (_json(archive, info, path).get("config") or {}).values()
                if any(not isinstance(e, dict) or e.get("use_pickle", True) for e in entries):
                    raise UnsafeProgram(f"{path}: a tensor is stored as a pickle, which loading would unpickle freely")
            elif inner.startswith("data/sample_inputs/") and inner.endswith(".pt"):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # the safe unpickler's notes on protocols
                        torch.load(io.BytesIO(archive.read(info)), weights_only=True)
                except Exception:  # noqa: BLE001 - any refusal by the safe unpickler is the answer
                    raise UnsafeProgram(f"{path}: its sample inputs are not plain tensors (a pickle that would run "
                                        "code)") from None
            else:
                raise UnsafeProgram(f"{path}: unexpected entry {info.filename!r} (extra files and TorchScript "
                                    "objects can carry code)")


def program_sha256(path: str | Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def load_program(path: str | Path) -> torch.nn.Module:
    """The audited program at ``path`` as a module (``ExportedProgram.module()``)."""
    audit_pt2(path)
    try:
        return torch.export.load(str(path)).module()
    except Exception as err:  # noqa: BLE001 - a malformed graph fails in many ways
        raise UnsafeProgram(f"{path}: not a loadable exported program ({type(err).__name__}: {str(err)[:160]})") from None


@dataclass
class ExportedConfig(DataConfig):
    latent_dim: int = 2
    likelihood: str = "bernoulli"  # "bernoulli" (the decoder gives logits) | "gaussian" (it gives the mean)
    sigma: float = 0.1 ** 0.5  # the Gaussian likelihood's fixed σ


class ForeignVAE(LatentVariableModel):
    """A VAE whose encoder and decoder were written elsewhere: ``encode_fn`` x (batch, features) ->
    (mean, log_var), ``decode_fn`` z (batch, latent) -> logits or mean. Missing entries are filled
    with 0 before encoding (a foreign encoder knows no mask)."""

    config_class = ExportedConfig

    def __init__(self, config: ExportedConfig):
        super().__init__(config)
        if config.likelihood not in ("bernoulli", "gaussian"):
            raise VizvaeError(f"likelihood {config.likelihood!r}: expected bernoulli or gaussian")
        self.anchor = torch.nn.Parameter(torch.zeros(()), requires_grad=False)  # a device even without weights

    def encode_fn(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode_fn(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def latent_dims(self) -> list[int]:
        return [int(self.config.latent_dim)]

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> Any:
        x = x.reshape(len(x), -1)
        mean, log_var = self.encode_fn(x if mask is None else torch.where(mask, x, torch.zeros_like(x)))
        return gaussian_from_logvar(mean, log_var)

    def decode(self, z: torch.Tensor) -> Likelihood:
        flat = z.reshape(-1, z.shape[-1])
        out = self.decode_fn(flat).reshape(*z.shape[:-1], -1)
        if self.config.likelihood == "bernoulli":
            return BernoulliLikelihood(out)
        return GaussianLikelihood(out, torch.full_like(out[..., :1], float(torch.tensor(self.config.sigma).log())))


class ExportedVAE(ForeignVAE):
    """``encode`` and ``decode`` by two exported programs."""

    model_key = "exported"

    def __init__(self, config: ExportedConfig, encoder: torch.nn.Module, decoder: torch.nn.Module):
        super().__init__(config)
        self.encoder, self.decoder = encoder, decoder

    def encode_fn(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    def decode_fn(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def train(self, mode: bool = True) -> "ExportedVAE":
        """An exported program has no training mode (it was traced in one): only the flag changes."""
        self.training = mode
        return self


def load_exported_vae(encoder_file: str | Path, decoder_file: str | Path, config: ExportedConfig) -> ExportedVAE:
    return ExportedVAE(config, load_program(encoder_file), load_program(decoder_file))
