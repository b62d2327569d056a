"""A VAE from the user's own Python (trusted code): an adapter file whose entry function returns a
``torch.nn.Module`` with

* ``encode(x)`` -> ``(mean, log_var)``: x (batch, features), each output (batch, latent);
* ``decode(z)`` -> Bernoulli logits or a Gaussian mean, (batch, features);

and, optionally,

* ``log_joint(x, z)`` -> log p(x, z), (batch,) floats: x (batch, features), z (batch, latent). When
  the network has it, it is the model's ``log_joint`` — the target of HMC, importance weights and
  the posterior grids — in place of the one built from ``decode``, the likelihood and a N(0, I)
  prior. Those parts stay for the ELBO, sampling, reconstructions and the Gibbs imputer (which
  scores completed rows from the decoder itself). It scores whole rows: asking it for log p(x_O, z)
  of a row with missing entries is refused;
* ``predict(x)`` -> (batch, targets) floats: a predictor of targets from the features alone (a
  regressor's values, a classifier's logits or probabilities), exposed as ``AdapterVAE.predict``
  with the flag ``can_predict``. It is not the p(y | x̂, z) of the ``PredictorModel`` capability
  (no likelihood of y, no latent), so the pages that use that one do not see it;

and weights in a safetensors file. ``python -m vizvae import --adapter my_vae.py:build --weights
w.safetensors ...`` copies the file into the checkpoint folder and records its SHA-256. Import runs
every method the network has on a zero batch and refuses a shape other than these, a dtype that is
not floating point, or a non-finite value; each later call checks the shape and dtype again.

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
    """``encode`` and ``decode`` by the adapter's network (``self.net``, its weights the checkpoint's),
    and its optional ``log_joint`` and ``predict`` (see the module docstring)."""

    model_key = "adapter"
    config_class = AdapterConfig

    def __init__(self, config: AdapterConfig, net: torch.nn.Module):
        super().__init__(config)
        self.net = net
        # The network is the user's, so what it can do is read here, once, where the model is built;
        # code that needs either method asks these flags, never the network.
        self.has_own_log_joint = callable(getattr(net, "log_joint", None))
        self.can_predict = callable(getattr(net, "predict", None))

    def encode_fn(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.encode(x)

    def decode_fn(self, z: torch.Tensor) -> torch.Tensor:
        return self.net.decode(z)

    def log_joint(self, x: torch.Tensor, mask: torch.Tensor | None, z: torch.Tensor,
                  y: torch.Tensor | None = None, y_mask: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x_O, z): x (..., features) broadcast against z (..., latent) -> (...), as for every
        model; by the network's ``log_joint`` when it has one. ``y`` is ignored (no p(y | x̂, z))."""
        if not self.has_own_log_joint:
            return super().log_joint(x, mask, z, y, y_mask)
        if mask is not None and not bool(mask.all()):
            raise VizvaeError("the adapter's log_joint(x, z) scores whole rows; it cannot give log p(x_O, z) for a "
                              "row with missing entries")
        lead = torch.broadcast_shapes(x.shape[:-1], z.shape[:-1])
        x_rows = x.expand(*lead, x.shape[-1]).reshape(-1, x.shape[-1])  # (rows, features)
        z_rows = z.expand(*lead, z.shape[-1]).reshape(-1, z.shape[-1])  # (rows, latent)
        joint = adapter_output(self.net.log_joint(x_rows, z_rows), "log_joint", (len(x_rows),))
        return joint.to(z.dtype).reshape(lead)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The network's predictor: x (batch, features) -> (batch, targets), from whole rows."""
        if not self.can_predict:
            raise VizvaeError("this adapter's network has no predict(x)")
        x = x.reshape(len(x), -1)
        return adapter_output(self.net.predict(x), "predict", (len(x), None))


def adapter_output(values: object, method: str, shape: tuple[int | None, ...]) -> torch.Tensor:
    """``values`` if it is a floating-point tensor of ``shape`` (None: any size), else a one-line
    ``VizvaeError`` naming the method: the user's code is checked where its result enters vizvae."""
    if not isinstance(values, torch.Tensor):
        raise VizvaeError(f"the adapter's {method} returned a {type(values).__name__}; expected a tensor")
    fits = values.ndim == len(shape) and all(want is None or got == want for got, want in zip(values.shape, shape))
    if not fits or not values.is_floating_point():
        wanted = ", ".join("any" if size is None else str(size) for size in shape)
        raise VizvaeError(f"the adapter's {method} returned {values.dtype} of shape {tuple(values.shape)}; expected "
                          f"floating point of shape ({wanted})")
    return values


@torch.no_grad()
def check_optional_methods(model: AdapterVAE, features: int, latent: int) -> None:
    """Run the network's ``log_joint`` and ``predict`` (those it has) once on a zero batch of two rows:
    a wrong shape or dtype, or a non-finite value, is refused (``VizvaeError``) at import."""
    x, z = torch.zeros(2, features), torch.zeros(2, latent)
    outputs = {}
    if model.has_own_log_joint:
        outputs["log_joint"] = model.log_joint(x, None, z)
    if model.can_predict:
        outputs["predict"] = model.predict(x)
    for method, values in outputs.items():
        if not bool(torch.isfinite(values).all()):
            raise VizvaeError(f"the adapter's {method} is not finite on a zero batch: {values.flatten()[:4].tolist()}")


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
