"""Datasets, masks and column-type schemas."""

from vizvae.data.datasets import DATASET_NAMES, load_dataset, register_dataset, upsample_digits
from vizvae.data.masks import (
    box_mask, half_mask, mcar_mask, protocol_masks, square_hole_mask, test_mask, training_mask,
)
from vizvae.data.schema import ColumnType, fit_schema, infer_kind
from vizvae.data.splits import Dataset
from vizvae.errors import DataError

__all__ = [
    "DATASET_NAMES", "ColumnType", "DataError", "Dataset", "box_mask", "fit_schema", "half_mask",
    "infer_kind", "load_dataset", "mcar_mask", "protocol_masks", "register_dataset", "square_hole_mask",
    "test_mask", "training_mask", "upsample_digits",
]
