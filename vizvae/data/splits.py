"""The ``Dataset`` record and the fixed, seeded train/test splits that build one.

Every dataset — embedded (``datasets.py``), generated (``shapes.py``) or the user's own
(``user.py``) — is made here, so those modules import this one and never each other. Images are
flattened to (n, C*H*W) floats in [0, 1]; tables are in model space (see ``schema.py``) with the
statistics fitted on the train split only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vizvae.data.schema import ColumnType, fit_schema, table_to_model, table_to_raw

SPLIT_SEED = 0


@dataclass
class Dataset:
    """One dataset, split. ``x_*`` are float32 (n, features); ``y_*`` float32 (n,) or None."""

    name: str
    kind: str  # "image" | "table"
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    feature_names: list[str]
    target_name: str | None = None
    image_shape: tuple[int, int, int] | None = None  # (channels, height, width)
    schema: list[ColumnType] | None = None  # tables: one type per feature column
    target: ColumnType | None = None  # type of y (categorical for labels)
    preprocessing: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int | None:
        if self.target is not None and self.target.is_discrete:
            return self.target.n_categories
        return None

    def features_to_raw(self, x: np.ndarray) -> np.ndarray:
        if self.schema is None:
            return np.asarray(x)
        return table_to_raw(x, self.schema)

    def describe(self) -> dict[str, Any]:
        """What a checkpoint records about its data, enough to rebuild the preprocessing."""
        return {
            "name": self.name,
            "kind": self.kind,
            "n_train": int(len(self.x_train)),
            "n_test": int(len(self.x_test)),
            "n_features": self.n_features,
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "feature_names": list(self.feature_names),
            "target_name": self.target_name,
            "schema": [c.to_json() for c in self.schema] if self.schema else None,
            "target": self.target.to_json() if self.target else None,
            "preprocessing": dict(self.preprocessing),
        }


def split_indices(n: int, test_size: int | float, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """A fixed permutation split: the same seed always gives the same rows."""
    n_test = int(round(n * test_size)) if isinstance(test_size, float) else int(test_size)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def label_type(labels: np.ndarray, name: str = "label") -> ColumnType:
    return ColumnType(name, "categorical").fit(labels.astype(np.float64))


def image_dataset(
    name: str,
    images: np.ndarray,
    labels: np.ndarray | None,
    image_shape: tuple[int, int, int],
    test_size: int | float,
    binarize: bool,
    seed: int = SPLIT_SEED,
    extra: dict[str, Any] | None = None,
) -> Dataset:
    images = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    if binarize:
        images = (images > 0.5).astype(np.float32)  # thesis: binarised at 0.5
    train, test = split_indices(len(images), test_size, seed)
    target = label_type(labels) if labels is not None else None
    y = target.to_model(labels.astype(np.float64)) if labels is not None else None
    return Dataset(
        name=name,
        kind="image",
        x_train=images[train],
        y_train=None if y is None else y[train],
        x_test=images[test],
        y_test=None if y is None else y[test],
        feature_names=[f"pixel_{i}" for i in range(images.shape[1])],
        target_name="label" if labels is not None else None,
        image_shape=image_shape,
        target=target,
        preprocessing={"binarize": binarize, "split_seed": seed, "test_size": test_size, **(extra or {})},
    )


def table_dataset(
    name: str,
    raw_x: np.ndarray,
    raw_y: np.ndarray,
    feature_names: list[str],
    target_name: str,
    test_size: float = 0.2,
    declared: dict[str, Any] | None = None,
    target_kind: str | None = None,
    seed: int = SPLIT_SEED,
) -> Dataset:
    raw_x = np.asarray(raw_x, dtype=np.float64)
    raw_y = np.asarray(raw_y, dtype=np.float64)
    train, test = split_indices(len(raw_x), test_size, seed)
    schema = fit_schema(raw_x[train], feature_names, declared)
    kind = target_kind or fit_schema(raw_y[train, None], [target_name])[0].kind
    target = ColumnType(target_name, kind).fit(raw_y[train])
    x = table_to_model(raw_x, schema)
    y = target.to_model(raw_y)
    return Dataset(
        name=name,
        kind="table",
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        feature_names=list(feature_names),
        target_name=target_name,
        schema=schema,
        target=target,
        preprocessing={"split_seed": seed, "test_size": test_size, "standardised_on": "train"},
    )
