"""A VAE brought as two exported programs (``torch.export``, ``.pt2``): an encoder
x (batch, features) -> (mean, log_var) (batch, latent) and a decoder z (batch, latent) -> the
likelihood's parameters (batch, features): Bernoulli logits, or a Gaussian mean. No Python from
the files runs, so this path is open to uploads.

What ``torch.export.load`` would execute, and how vizvae keeps it from doing so (read from torch
2.13's ``export/pt2_archive/_package.py`` and ``_export/serde/serialize.py``):

* a weight or constant stored with ``use_pickle: true`` goes through torch's unrestricted
  unpickler — arbitrary code: ``audit_pt2`` refuses the file unless every entry of the weight and
  constant configs says ``false`` (tensors then are raw little-endian bytes);
* the sample inputs (``data/sample_inputs/*.pt``) are a pickle that torch unpickles, retrying
  without restrictions when its safe loader refuses them. vizvae never lets them be read:
  ``load_program`` hands torch a copy of the archive whose sample inputs are empty (torch then
  skips them; the program does not need them). The audit still reads their opcodes *statically*
  (``pickletools``, nothing executed) and refuses a file whose sample inputs name any global but
  the few a saved tensor needs — a planted pickle says what it is;
* ``extra/`` files and TorchScript objects (custom classes) carry code or pickles: refused;
* graph nodes name their operators; deserialising resolves the names against operators already
  registered in this process. Only ``torch.ops.aten``, ``torch.ops.prims`` and Python's
  ``operator`` module are accepted, so no custom operator (whatever code registered it) is called.

Beyond that the archive is data: JSON describing the graph, and raw tensor bytes. A file that is
not a zip archive (e.g. a pickle renamed ``.pt2``) is refused before anything is read.
"""

from __future__ import annotations

import io
import json
import pickletools
import tempfile
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


# the globals a torch.save of tensors (in tuples, lists, dicts) names, and nothing else
TENSOR_PICKLE_GLOBALS = frozenset({"torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter",
                                   "collections OrderedDict", "torch._utils _rebuild_tensor"}
                                  | {f"torch {kind}Storage" for kind in ("Float", "Double", "Half", "BFloat16", "Long",
                                                                         "Int", "Short", "Char", "Byte", "Bool")})


def plain_tensor_pickle(data: bytes) -> bool:
    """Whether a ``torch.save`` archive's pickle names only the globals tensors need: read as
    opcodes (``pickletools.genops``), never executed."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as inner:
            names = [n for n in inner.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(names) != 1:
                return False
            strings: list[str] = []
            for opcode, argument, _ in pickletools.genops(inner.read(names[0])):
                if opcode.name == "GLOBAL":
                    if argument not in TENSOR_PICKLE_GLOBALS:
                        return False
                elif opcode.name == "STACK_GLOBAL":
                    if len(strings) < 2 or f"{strings[-2]} {strings[-1]}" not in TENSOR_PICKLE_GLOBALS:
                        return False
                elif opcode.name in ("INST", "OBJ", "EXT1", "EXT2", "EXT4"):
                    return False
                if isinstance(argument, str):
                    strings.append(argument)
    except (zipfile.BadZipFile, ValueError, KeyError):  # not a torch.save archive, or not a pickle
        return False
    return True


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
                if not plain_tensor_pickle(archive.read(info)):
                    raise UnsafeProgram(f"{path}: its sample inputs are not plain tensors (a pickle that would run "
                                        "code)")
            else:
                raise UnsafeProgram(f"{path}: unexpected entry {info.filename!r} (extra files and TorchScript "
                                    "objects can carry code)")


def load_program(path: str | Path) -> torch.nn.Module:
    """The audited program at ``path`` as a module (``ExportedProgram.module()``), loaded from a copy
    whose sample inputs are empty, so that torch unpickles nothing at all."""
    audit_pt2(path)
    with tempfile.TemporaryFile() as copy:
        with zipfile.ZipFile(path) as archive, zipfile.ZipFile(copy, "w", zipfile.ZIP_STORED) as stripped:
            for info in archive.infolist():
                stripped.writestr(info, b"" if "/data/sample_inputs/" in info.filename else archive.read(info))
        copy.seek(0)
        try:
            return torch.export.load(copy).module()
        except Exception as err:  # noqa: BLE001 - a malformed graph fails in many ways
            raise UnsafeProgram(f"{path}: not a loadable exported program ({type(err).__name__}: "
                                f"{str(err)[:160]})") from None


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
