"""Checkpoints: a folder with ``model.safetensors`` (weights only) and ``config.json``
(model class, constructor arguments, dataset and preprocessing, training history,
evaluation, versions, seed). SPEC §6.

Loading never unpickles anything. Every way a checkpoint can be wrong (missing file, pickle
posing as weights, truncated file, unknown model, mismatched shapes) raises one
``CheckpointError`` whose message names the file and what is wrong.
"""

from __future__ import annotations

import json
import os
import pickle  # only for HIGHEST_PROTOCOL: vizvae never unpickles
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from vizvae.errors import CheckpointError

if TYPE_CHECKING:  # torch is imported where weights are touched, so listing models stays light
    import torch

    from vizvae.models.base import LatentVariableModel

FORMAT = "vizvae.checkpoint"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DIR = REPO_ROOT / "assets" / "models"


@dataclass
class CheckpointInfo:
    """What a listing needs, read from config.json alone (cheap: no weights touched)."""

    name: str
    model: str
    dataset: str
    latent_dims: list[int]
    path: str
    size_bytes: int
    shipped: bool
    evaluation: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Checkpoint:
    model: LatentVariableModel  # in eval mode, its capabilities checked
    config: dict[str, Any]  # the whole config.json
    path: Path

    @property
    def name(self) -> str:
        return self.config.get("name", self.path.name)


def library_versions() -> dict[str, str]:
    import numpy
    import safetensors
    import torch

    from vizvae import __version__

    return {
        "vizvae": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
        "safetensors": safetensors.__version__, "python": platform.python_version(),
    }


def save_checkpoint(model: LatentVariableModel, folder: str | Path, *, name: str, dataset: dict[str, Any],
                    training: dict[str, Any] | None = None, evaluation: dict[str, Any] | None = None,
                    extra: dict[str, Any] | None = None) -> Path:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS), metadata={"format": FORMAT, "model": model.model_key})
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "model": model.model_key,
        "model_class": type(model).__name__,
        "latent_dims": model.latent_dims,
        "architecture": model.describe(),
        "config": model.config.to_json(),
        "dataset": dataset,
        "training": training or {},
        "evaluation": evaluation or {},
        "versions": library_versions(),
        **(extra or {}),
    }
    (folder / CONFIG).write_text(json.dumps(config, indent=1, default=_json_default))
    same_mode_as(folder / WEIGHTS, folder / CONFIG)
    return folder


def same_mode_as(file: Path, reference: Path) -> None:
    """Give ``file`` the permission bits of ``reference``. safetensors writes its file through a
    private temporary file (mode 0600), while ``config.json`` and the cards get the umask's mode
    (0644 as a rule): a checkpoint copied or served from a shared folder must be readable as a whole."""
    os.chmod(file, reference.stat().st_mode & 0o777)


def _json_default(value: Any) -> Any:
    import numpy
    import torch  # a config holding a tensor was made with torch loaded: this import is free

    if isinstance(value, (numpy.ndarray, numpy.generic, torch.Tensor)):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in config.json")


def update_config(folder: str | Path, **sections: Any) -> None:
    """Merge sections (e.g. ``evaluation``) into an existing config.json."""
    path = Path(folder) / CONFIG
    config = json.loads(path.read_text())
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    path.write_text(json.dumps(config, indent=1, default=_json_default))


# -- validation -------------------------------------------------------------------------------
def _folder(path: str | Path) -> Path:
    path = Path(path)
    if path.is_file() and path.name in (WEIGHTS, CONFIG):
        path = path.parent
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint folder")
    if not path.is_dir():
        raise CheckpointError(f"{path}: expected a checkpoint folder holding {WEIGHTS} and {CONFIG}")
    return path


def read_json_config(file: Path, expected_format: str, what: str, missing_hint: str) -> dict[str, Any]:
    """A config.json that must parse to an object with ``"format": expected_format``."""
    if not file.is_file():
        raise CheckpointError(f"{file}: missing; {missing_hint}")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{file}: not valid JSON ({err})") from None
    if not isinstance(config, dict) or config.get("format") != expected_format:
        raise CheckpointError(f"{file}: not {what} (expected \"format\": \"{expected_format}\")")
    return config


def read_config(path: str | Path, check_model: bool = True) -> dict[str, Any]:
    """config.json, checked for being a vizvae checkpoint (of a model this vizvae knows, unless
    ``check_model`` is False: listing models then needs no torch import)."""
    folder = _folder(path)
    file = folder / CONFIG
    config = read_json_config(file, FORMAT, "a vizvae checkpoint config",
                              missing_hint=f"a checkpoint folder needs {CONFIG} beside {WEIGHTS}")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{file}: format version {config['format_version']} is newer than this vizvae reads "
            f"({FORMAT_VERSION}); upgrade vizvae"
        )
    model = config.get("model")
    if check_model:
        from vizvae.models import MODEL_REGISTRY
    if check_model and model not in MODEL_REGISTRY:
        raise CheckpointError(
            f"{file}: unknown model class {model!r}; this vizvae knows {', '.join(sorted(MODEL_REGISTRY))}"
        )
    if not isinstance(config.get("config"), dict):
        raise CheckpointError(f"{file}: missing the model's constructor arguments under \"config\"")
    return config


class WeightsHeader(NamedTuple):
    """What a safetensors header says, read without loading a tensor."""

    tensors: dict[str, tuple[str, list[int]]]  # name -> (dtype such as "F32", shape)
    metadata: dict[str, str]  # the free-form "__metadata__" strings


def inspect_weights(file: Path) -> WeightsHeader:
    """Names, dtypes, shapes and metadata of a safetensors file, read with ``safe_open`` (which
    checks that the header is well formed and that its tensors cover the file exactly)."""
    from safetensors import SafetensorError, safe_open

    if not file.is_file():
        raise CheckpointError(f"{file}: missing; a checkpoint folder needs {WEIGHTS} beside {CONFIG}")
    try:
        with safe_open(str(file), framework="pt") as weights:
            slices = {name: weights.get_slice(name) for name in weights.keys()}
            tensors = {name: (part.get_dtype(), list(part.get_shape())) for name, part in slices.items()}
            return WeightsHeader(tensors, dict(weights.metadata() or {}))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(_why_not_safetensors(file, str(err))) from None


def check_weights_belong(header: WeightsHeader, config: dict[str, Any], weights_file: Path) -> None:
    """The model key the weights were saved with (when they name one) is config.json's."""
    saved_by = header.metadata.get("model")
    if saved_by is not None and saved_by != config.get("model"):
        raise CheckpointError(f"{weights_file}: weights saved by a {saved_by!r} model, but {CONFIG} "
                              f"builds {config.get('model')!r}; the weights belong to a different model")


PROTOCOL_0_1_STARTS = (b"(d", b"(l", b"}q")  # a dict or list pickled by protocol 0 or 1
PROTO_OPCODE = 0x80  # protocols 2 and later open with PROTO and the protocol number
ZIP_START = b"PK\x03\x04"  # torch.save since torch 1.6


def _looks_pickled(head: bytes) -> bool:
    """Pickle magic bytes, unless the safetensors JSON header opens where it would (byte 8): a
    safetensors length prefix may itself start with 0x80 (any header of 128 mod 256 bytes)."""
    if head[8:9] == b"{":
        return False
    protocol_2_on = len(head) >= 2 and head[0] == PROTO_OPCODE and 2 <= head[1] <= pickle.HIGHEST_PROTOCOL
    return protocol_2_on or head.startswith(PROTOCOL_0_1_STARTS)


def _why_not_safetensors(file: Path, library_message: str) -> str:
    """The one-line reason for a file that ``safe_open`` refused. Magic bytes are sniffed only
    then, so a valid safetensors file is never mistaken for a pickle or a zip."""
    size = file.stat().st_size
    with open(file, "rb") as handle:
        head = handle.read(9)
    if head.startswith(ZIP_START):
        return (f"{file}: a zip archive (torch.save format), not safetensors; vizvae never unpickles. "
                "Convert it with safetensors.torch.save_file")
    if _looks_pickled(head):
        return (f"{file}: a Python pickle posing as weights; vizvae never unpickles (it can run code). "
                "Save the weights with safetensors instead")
    reason = library_message.removeprefix("Error while deserializing header: ").splitlines()[0]
    if "too small" in reason:
        return f"{file}: truncated or empty ({size} bytes); not a safetensors file"
    if "too large" in reason:
        return f"{file}: truncated or not a safetensors file (its header length does not fit in {size} bytes)"
    if "not fully covered" in reason:
        return f"{file}: truncated (or padded): its header's tensors do not cover its {size} bytes exactly"
    if "invalid JSON" in reason:
        return f"{file}: not a safetensors file (its header is not valid: {reason})"
    return f"{file}: not a safetensors file ({reason})"


def validate_checkpoint(path: str | Path) -> dict[str, Any]:
    """Everything short of building the model: config and weights headers agree. Returns config."""
    config = read_config(path)
    weights_file = _folder(path) / WEIGHTS
    check_weights_belong(inspect_weights(weights_file), config, weights_file)
    return config


def build_model(config: dict[str, Any], source: str = CONFIG) -> Any:
    from vizvae.models import MODEL_REGISTRY

    cls = MODEL_REGISTRY[config["model"]]
    try:
        model_config = cls.config_class.from_json(config["config"])
        return cls(model_config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{source}: the model arguments under \"config\" do not build a {cls.__name__} ({err})") from None


def load_weights(module: Any, weights_file: Path, device: str | torch.device | None = None) -> Any:
    """Fill ``module`` from a safetensors file after checking every tensor's name and shape
    against what the config built; then eval mode, frozen, on ``device``. Never unpickles."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from vizvae.device import resolve_device

    header = inspect_weights(weights_file).tensors
    expected = module.state_dict()
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(f"{weights_file}: does not match {CONFIG} ({detail} tensors); "
                              "the weights belong to a different model")
    for name, tensor in expected.items():
        if list(tensor.shape) != header[name][1]:
            raise CheckpointError(
                f"{weights_file}: tensor {name!r} has shape {header[name][1]} but {CONFIG} builds "
                f"{list(tensor.shape)}; the weights belong to a different configuration"
            )
    try:
        state = load_file(str(weights_file))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights_file}: unreadable safetensors file ({err})") from None
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{weights_file}: tensor {name!r} holds NaN or infinite values")
    module.load_state_dict(state)
    module.to(resolve_device(device)).eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def load_checkpoint(path: str | Path, device: str | torch.device | None = None) -> Checkpoint:
    """Load a checkpoint folder safely; raises ``CheckpointError`` with a one-line reason. The
    model's declared capabilities are checked here, once, so callers may ask for them by type."""
    from vizvae.models.capabilities import check_capabilities

    folder = _folder(path)
    config = read_config(folder)
    weights_file = folder / WEIGHTS
    check_weights_belong(inspect_weights(weights_file), config, weights_file)
    model = build_model(config, str(folder / CONFIG))
    try:
        check_capabilities(model)
    except CheckpointError as err:
        raise CheckpointError(f"{folder / CONFIG}: {err}") from None
    load_weights(model, weights_file, device)
    return Checkpoint(model=model, config=config, path=folder)


# -- listing ------------------------------------------------------------------------------------
def checkpoint_info(path: str | Path, shipped: bool = False) -> CheckpointInfo:
    folder = _folder(path)
    config = read_config(folder, check_model=False)
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    return CheckpointInfo(
        name=config.get("name", folder.name),
        model=config["model"],
        dataset=(config.get("dataset") or {}).get("name", "?"),
        latent_dims=[int(d) for d in config.get("latent_dims", [])],
        path=str(folder),
        size_bytes=int(size),
        shipped=shipped,
        evaluation=config.get("evaluation", {}),
    )


def shipped_checkpoints(root: Path = SHIPPED_DIR) -> list[CheckpointInfo]:
    """The registry of shipped models: every valid folder under ``assets/models/``."""
    if not root.is_dir():
        return []
    infos = []
    for folder in sorted(p for p in root.iterdir() if (p / CONFIG).is_file()):
        try:
            infos.append(checkpoint_info(folder, shipped=True))
        except CheckpointError:
            continue
    return infos


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """A shipped model's name, or a path to a checkpoint folder."""
    candidate = SHIPPED_DIR / str(name_or_path)
    if (candidate / CONFIG).is_file():
        return candidate
    path = Path(name_or_path)
    if path.exists():
        return _folder(path)
    names = ", ".join(info.name for info in shipped_checkpoints()) or "none"
    raise CheckpointError(f"{name_or_path}: neither a checkpoint folder nor a shipped model (shipped: {names})")


def checkpoint_dataset(config: dict[str, Any]):
    """The dataset a checkpoint was trained on, rebuilt from config.json's ``dataset`` section
    with the same preprocessing (binarisation, image size) and the same seeded split."""
    from vizvae.data import DATASET_NAMES, load_dataset
    from vizvae.errors import DataError

    described = config.get("dataset") or {}
    name = described.get("name")
    preprocessing = described.get("preprocessing") or {}
    options: dict[str, Any] = {}
    if described.get("kind") == "image" or described.get("image_shape"):
        options["binarize"] = bool(preprocessing.get("binarize", False))
    if name == "digits" and "image_size" in preprocessing:
        options["image_size"] = int(preprocessing["image_size"])
    if name in DATASET_NAMES:
        return load_dataset(name, **options)
    source = preprocessing.get("source")
    if source and Path(source).exists():
        return load_dataset(source, **options)
    raise DataError(f"the dataset {name!r} this checkpoint was trained on is not available here")
