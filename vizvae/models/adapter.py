"""A VAE from the user's own Python (trusted code): an adapter file whose entry function returns a
``torch.nn.Module`` with

* ``encode(x)`` -> ``(mean, log_var)``: x (batch, features), each output (batch, latent);
* ``decode(z)`` -> Bernoulli logits or a Gaussian mean, (batch, features);

and weights in a safetensors file. ``python -m vizvae import --adapter my_vae.py:build --weights
w.safetensors ...`` copies the file into the checkpoint folder and records its SHA-256.

The adapter is code, so it runs only when the operator allows it: from the command line, or in
the app for checkpoints inside a folder named in ``VIZVAE_TRUSTED_ADAPTERS`` (paths separated by
``os.pathsep``). Never for a browser upload (an upload holds no adapter file), and never once the
file differs from the SHA-256 recorded at import.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from vizvae.errors import VizvaeError
from vizvae.models.exported import ExportedConfig, ForeignVAE
from vizvae.paths import file_sha256

ADAPTER_FILE = "adapter.py"
TRUSTED_ENV = "VIZVAE_TRUSTED_ADAPTERS"


@dataclass
class AdapterConfig(ExportedConfig):
    entry: str = "build"  # the function in adapter.py that returns the network
    adapter_sha256: str = ""


class AdapterVAE(ForeignVAE):
    """``encode`` and ``decode`` by the adapter's network (``self.net``, its weights the checkpoint's)."""

    model_key = "adapter"
    config_class = AdapterConfig

    def __init__(self, config: AdapterConfig, net: torch.nn.Module):
        super().__init__(config)
        self.net = net

    def encode_fn(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.encode(x)

    def decode_fn(self, z: torch.Tensor) -> torch.Tensor:
        return self.net.decode(z)


def trusted_folders() -> list[Path]:
    text = os.environ.get(TRUSTED_ENV, "")
    return [Path(part).expanduser().resolve() for part in text.split(os.pathsep) if part.strip()]


def is_trusted(folder: str | Path) -> bool:
    """Whether the operator named ``folder`` (or a folder above it) in ``VIZVAE_TRUSTED_ADAPTERS``."""
    resolved = Path(folder).resolve()
    return any(resolved == root or root in resolved.parents for root in trusted_folders())


def run_adapter(file: str | Path, entry: str) -> torch.nn.Module:
    """Execute the adapter file and call ``entry()``: trusted code only (see the module docstring)."""
    file = Path(file)
    if not entry.isidentifier():
        raise VizvaeError(f"{file}: the entry {entry!r} is not a function name")
    name = f"vizvae_adapter_{file_sha256(file)[:16]}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise VizvaeError(f"{file}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        build = getattr(module, entry, None)
        if not callable(build):
            raise VizvaeError(f"{file}: has no function {entry}()")
        net = build()
    except VizvaeError:
        raise
    except Exception as err:  # noqa: BLE001 - the user's code fails its own way; say how, in one line
        raise VizvaeError(f"{file}: {entry}() failed ({type(err).__name__}: {str(err)[:200]})") from None
    if not isinstance(net, torch.nn.Module) or not all(callable(getattr(net, m, None)) for m in ("encode", "decode")):
        raise VizvaeError(f"{file}: {entry}() must return a torch.nn.Module with encode(x) and decode(z)")
    return net
