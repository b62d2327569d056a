"""Column types of mixed-type tables (SPEC §2, thesis §3.6 and §5.2.2).

Every column is one of ``gaussian``, ``loggaussian`` (Gaussian on standardised log(1 + x), for
non-negative reals), ``bernoulli`` or ``categorical``. A column is stored in *model space*:
standardised reals, 0/1 for binary, integer codes 0..C-1 for categories. ``ColumnType`` carries
the statistics that move a column between raw units and model space, fitted on the train split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from vizvae.errors import DataError

KINDS = ("gaussian", "loggaussian", "bernoulli", "categorical")


@dataclass
class ColumnType:
    name: str
    kind: str
    categories: list[float] = field(default_factory=list)  # raw values, for bernoulli/categorical
    mean: float = 0.0  # of x (gaussian) or log1p(x) (loggaussian), train split
    std: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DataError(
                f"column {self.name!r}: unknown type {self.kind!r}; expected one of {', '.join(KINDS)}"
            )

    @property
    def n_categories(self) -> int:
        return len(self.categories) if self.kind in ("bernoulli", "categorical") else 0

    @property
    def is_discrete(self) -> bool:
        return self.kind in ("bernoulli", "categorical")

    def fit(self, raw: np.ndarray) -> "ColumnType":
        """Fit the standardisation (or the category list) on a train column; NaN = missing."""
        values = raw[np.isfinite(raw)]
        if self.kind in ("bernoulli", "categorical"):
            if not self.categories:
                self.categories = sorted(float(v) for v in np.unique(values))
            if self.kind == "bernoulli" and len(self.categories) != 2:
                raise DataError(
                    f"column {self.name!r} is declared bernoulli but has {len(self.categories)} "
                    "distinct values; expected exactly 2"
                )
            return self
        if self.kind == "loggaussian":
            if (values < 0).any():
                raise DataError(
                    f"column {self.name!r} is declared loggaussian but has negative values; "
                    "expected non-negative reals (use gaussian instead)"
                )
            values = np.log1p(values)
        self.mean = float(values.mean()) if values.size else 0.0
        std = float(values.std()) if values.size else 1.0
        self.std = std if std > 1e-8 else 1.0
        return self

    def to_model(self, raw: np.ndarray) -> np.ndarray:
        """Raw units -> model space. NaN stays NaN (missing)."""
        raw = np.asarray(raw, dtype=np.float64)
        if self.is_discrete:
            out = np.full(raw.shape, np.nan)
            finite = np.isfinite(raw)
            cats = np.asarray(self.categories)
            codes = np.searchsorted(cats, raw[finite])
            codes = np.clip(codes, 0, len(cats) - 1)
            unknown = ~np.isclose(cats[codes], raw[finite])
            if unknown.any():
                bad = raw[finite][unknown][0]
                raise DataError(
                    f"column {self.name!r}: value {bad:g} is not one of its categories "
                    f"{[float(c) for c in self.categories]}"
                )
            out[finite] = codes
            return out.astype(np.float32)
        if self.kind == "loggaussian":
            raw = np.log1p(np.clip(raw, 0.0, None))
        return ((raw - self.mean) / self.std).astype(np.float32)

    def to_raw(self, model: np.ndarray) -> np.ndarray:
        """Model space -> raw units (inverse of ``to_model``)."""
        model = np.asarray(model, dtype=np.float64)
        if self.is_discrete:
            codes = np.clip(np.rint(model), 0, self.n_categories - 1).astype(int)
            return np.asarray(self.categories)[codes]
        raw = model * self.std + self.mean
        if self.kind == "loggaussian":
            # a model-space draw can fall below log1p(0): it maps to 0, the edge of the support
            with np.errstate(over="ignore"):
                raw = np.maximum(np.expm1(raw), 0.0)
        return raw

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ColumnType":
        return cls(**data)


def infer_kind(raw: np.ndarray) -> str:
    """The default rule of SPEC §2: < 10 distinct values -> categorical (bernoulli if 2);
    non-negative -> loggaussian; else gaussian."""
    values = raw[np.isfinite(raw)]
    distinct = np.unique(values)
    if len(distinct) == 2:
        return "bernoulli"
    if len(distinct) < 10:
        return "categorical"
    if (values >= 0).all():
        return "loggaussian"
    return "gaussian"


def fit_schema(
    raw_train: np.ndarray, names: Sequence[str], declared: dict[str, str | dict] | None = None
) -> list[ColumnType]:
    """Column types for a raw train matrix: declared ones where given, else the default rule."""
    declared = declared or {}
    unknown = set(declared) - set(names)
    if unknown:
        raise DataError(
            f"the schema names columns that are not in the data: {sorted(unknown)}; "
            f"the columns are {list(names)}"
        )
    schema = []
    for j, name in enumerate(names):
        spec = declared.get(name)
        if spec is None:
            column = ColumnType(name, infer_kind(raw_train[:, j]))
        elif isinstance(spec, str):
            column = ColumnType(name, spec)
        elif isinstance(spec, dict) and "type" in spec:
            column = ColumnType(name, spec["type"], categories=list(spec.get("categories", [])))
        else:
            raise DataError(
                f"schema entry for {name!r} must be a type name or an object with a 'type' key, "
                f"got {spec!r}"
            )
        schema.append(column.fit(raw_train[:, j]))
    return schema


def table_to_model(raw: np.ndarray, schema: Sequence[ColumnType]) -> np.ndarray:
    raw = np.asarray(raw, dtype=np.float64).reshape(len(raw), -1)
    return np.stack([col.to_model(raw[:, j]) for j, col in enumerate(schema)], axis=1)


def table_to_raw(model: np.ndarray, schema: Sequence[ColumnType]) -> np.ndarray:
    """(..., D) model-space values -> raw units, column by column."""
    model = np.asarray(model, dtype=np.float64)
    return np.stack([col.to_raw(model[..., j]) for j, col in enumerate(schema)], axis=-1)
