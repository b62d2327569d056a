"""The one schema of a checkpoint's ``config.json`` and of a safetensors header: every value a
loader, a listing or a page reads from these files is checked here, once, before anything is
built from it. A value of the wrong type, a NaN, a string where a list is expected or nesting
too deep for the parsers is refused in one line that names the file and the field.

The checks are driven by dataclasses: ``CheckpointConfig`` for the top level of config.json,
and each model's own config dataclass (``VAEConfig``, ``HierarchicalVAEConfig``, ...) for the
constructor arguments under ``"config"``; their type hints say what each field may hold.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import types
import typing
from dataclasses import MISSING, dataclass, fields
from typing import Any

from vizvae.errors import CheckpointError

MAX_CONFIG_BYTES_ENV = "VIZVAE_MAX_CONFIG_BYTES"
DEFAULT_MAX_CONFIG_BYTES = 4 * 1024 * 1024  # shipped configs are under 50 KB
MAX_JSON_DEPTH = 32  # shipped configs nest 7 levels; json's own recursion gives out near 1000
MAX_LIST_LENGTH = 4096  # layers, latent layers, table columns
MAX_DIMENSION = 1 << 31
# constructor arguments that are sizes of something and so must be at least 1
POSITIVE_FIELDS = frozenset({
    "input_shape", "latent_dim", "latent_dims", "hidden_dims", "hidden_dim", "decoder_hidden_dims",
    "transform_hidden", "predictor_hidden_dims", "n_classes", "clusters", "group_size", "n_transitions",
    "n_leapfrog", "sksd_chains", "n_importance", "marginal_hidden", "image_shape", "channels", "feature_dim",
    "classes",
})


def max_config_bytes() -> int:
    """``$VIZVAE_MAX_CONFIG_BYTES``, else 4 MiB."""
    return _positive_int_setting(MAX_CONFIG_BYTES_ENV, DEFAULT_MAX_CONFIG_BYTES)


def _positive_int_setting(name: str, default: int) -> int:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise CheckpointError(f"${name}={text!r}: expected a whole number") from None
    if value < 1:
        raise CheckpointError(f"${name}={text!r}: expected a number of at least 1")
    return value


# -- parsing ----------------------------------------------------------------------------------
def parse_json_bytes(data: bytes, file: Any) -> Any:
    """JSON text, refused in one line when it is not UTF-8 JSON or nests deeper than ``MAX_JSON_DEPTH``
    (deep nesting would raise ``RecursionError`` here or in whatever walks the value later)."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{file}: not valid JSON ({err})") from None
    except RecursionError:
        raise CheckpointError(f"{file}: nested too deeply to read (at most {MAX_JSON_DEPTH} levels)") from None
    depth = json_text_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise CheckpointError(f"{file}: nested {depth} levels deep; at most {MAX_JSON_DEPTH} levels are read")
    return value


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # a string, escapes included
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_BRACKET_STEP = [0] * 256
_BRACKET_STEP[ord("[")] = _BRACKET_STEP[ord("{")] = 1
_BRACKET_STEP[ord("]")] = _BRACKET_STEP[ord("}")] = -1


def json_text_depth(data: bytes) -> int:
    """Nesting depth of valid JSON text: the most containers open at once (a scalar is 0, ``[]`` 1),
    read off its brackets once the strings are cut out (0.5 ms for a 46 kB config, 5× faster than
    walking the parsed value)."""
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(itertools.accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)


# -- field checks -------------------------------------------------------------------------------
def check_value(value: Any, hint: Any, where: str, positive: bool = False) -> Any:
    """``value`` checked against the type hint ``hint``; returns it as the dataclass stores it (a
    list becomes a tuple for a ``tuple[...]`` field). Raises ``ValueError`` naming ``where``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return check_value(value, option, where, positive)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError(errors[0])
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {_shown(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be a whole number, got {_shown(value)}")
        low = 1 if positive else 0
        if not low <= value <= MAX_DIMENSION:
            raise ValueError(f"{where} must lie in [{low}, {MAX_DIMENSION}], got {value}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} must be a number, got {_shown(value)}")
        if not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number, got {value}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {_shown(value)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where} must be a list, got {_shown(value)}")
        if len(value) > MAX_LIST_LENGTH:
            raise ValueError(f"{where} holds {len(value)} entries; at most {MAX_LIST_LENGTH}")
        arguments = typing.get_args(hint)
        if origin is tuple and arguments and arguments[-1] is not Ellipsis:  # a fixed-length tuple
            if len(value) != len(arguments):
                raise ValueError(f"{where} must hold {len(arguments)} entries, got {len(value)}")
            return tuple(check_value(v, h, f"{where}[{i}]", positive) for i, (v, h) in enumerate(zip(value, arguments)))
        item_hint = arguments[0] if arguments else Any
        checked = [check_value(v, item_hint, f"{where}[{i}]", positive) for i, v in enumerate(value)]
        return tuple(checked) if origin is tuple else checked
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be an object, got {_shown(value)}")
        return value
    raise TypeError(f"no check for {hint!r} ({where})")


def check_dataclass_fields(cls: type, data: Any, where: str, allow_unknown: bool = False) -> dict[str, Any]:
    """The constructor arguments of dataclass ``cls`` in ``data``, each checked against its type
    hint (missing ones keep their defaults). Raises ``ValueError`` naming the field."""
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object, got {_shown(data)}")
    hints = typing.get_type_hints(cls)
    known = {field.name: field for field in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown and not allow_unknown:
        raise ValueError(f"{where} does not build a {cls.__name__.removesuffix('Config')} "
                         f"({cls.__name__} does not take {unknown})")
    checked = {}
    for name, field in known.items():
        if name not in data:
            if field.default is MISSING and field.default_factory is MISSING:
                raise ValueError(f"{where}.{name} is missing")
            continue
        checked[name] = check_value(data[name], hints[name], f"{where}.{name}", positive=name in POSITIVE_FIELDS)
    return checked


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


# -- config.json ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetSection:
    """``"dataset"``: what the pages read to rebuild the data a model was trained on."""

    name: str = "?"
    kind: str = "image"
    image_shape: tuple[int, ...] | None = None
    n_features: int | None = None
    preprocessing: dict[str, Any] | None = None


@dataclass(frozen=True)
class CheckpointConfig:
    """The top level of a checkpoint's config.json (other sections are kept as they are)."""

    format: str
    model: str
    config: dict[str, Any]
    format_version: int = 0
    name: str | None = None
    latent_dims: tuple[int, ...] = ()
    dataset: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    architecture: dict[str, Any] | None = None


def check_checkpoint_config(config: Any, file: Any) -> None:
    """Refuse a config.json whose top level or ``"dataset"`` section holds a value of the wrong type."""
    try:
        check_dataclass_fields(CheckpointConfig, config, "config.json", allow_unknown=True)
        dataset = config.get("dataset")
        if dataset is not None:
            check_dataclass_fields(DatasetSection, dataset, "config.json dataset", allow_unknown=True)
        test_elbo = (config.get("evaluation") or {}).get("test_elbo")  # shown by every listing
        if test_elbo is not None and (isinstance(test_elbo, bool) or not isinstance(test_elbo, (int, float))):
            raise ValueError(f"config.json evaluation.test_elbo must be a number, got {_shown(test_elbo)}")
    except ValueError as err:
        raise CheckpointError(f"{file}: {_field_message(err)}") from None


def _field_message(err: ValueError) -> str:
    """``config.json x must ...`` reads ``"x" must ...`` once the file is named in front of it."""
    text = str(err)
    for prefix in ("config.json ", "config.json."):
        if text.startswith(prefix):
            field_name, _, rest = text[len(prefix):].partition(" ")
            return f"field {field_name!r} {rest}"
    return text


def check_model_arguments(config_class: type, arguments: Any, file: Any, section: str = "config") -> dict[str, Any]:
    """The model's constructor arguments (``"config"``), each checked against ``config_class``'s
    type hints; returns them as the dataclass takes them."""
    try:
        return check_dataclass_fields(config_class, arguments, f"config.json {section}")
    except ValueError as err:
        raise CheckpointError(f"{file}: {_field_message(err)}") from None


# -- safetensors header -------------------------------------------------------------------------------
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a safetensors header: its dtype, shape and byte range in the data section."""

    dtype: str
    shape: tuple[int, ...]
    data_offsets: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPE_BYTES[self.dtype]


def check_header_entries(header: Any, data_bytes: int) -> tuple[dict[str, TensorEntry], dict[str, str]]:
    """(tensors, metadata) of a parsed safetensors header, every field checked; the tensors must
    cover the ``data_bytes`` after the header exactly, each as large as its dtype and shape say.
    Raises ``ValueError`` naming the tensor and field."""
    if not isinstance(header, dict):
        raise ValueError(f"its header is a JSON {type(header).__name__}, not an object")
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError("its header's \"__metadata__\" must map strings to strings")
    tensors: dict[str, TensorEntry] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        where = f"tensor {name!r}"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"{where} must give exactly dtype, shape and data_offsets")
        if entry["dtype"] not in DTYPE_BYTES:
            raise ValueError(f"{where} has an unknown dtype {_shown(entry['dtype'])}")
        shape = check_value(entry["shape"], tuple[int, ...], f"{where} shape")
        offsets = entry["data_offsets"]
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)):
            raise ValueError(f"{where} data_offsets must be two whole numbers [begin, end], got "
                             f"{json.dumps(offsets)[:40]}")
        tensor = TensorEntry(entry["dtype"], shape, (offsets[0], offsets[1]))
        if offsets[1] - offsets[0] != tensor.nbytes:
            raise ValueError(f"{where} data_offsets span {offsets[1] - offsets[0]} bytes but its dtype and shape "
                             f"need {tensor.nbytes}")
        tensors[name] = tensor
    covered = 0
    for tensor in sorted(tensors.values(), key=lambda t: t.data_offsets):
        if tensor.data_offsets[0] != covered:
            raise ValueError("not fully covered")
        covered = tensor.data_offsets[1]
    if covered != data_bytes:
        raise ValueError("not fully covered")
    return tensors, dict(metadata)
