"""A hand-written SAIA run over one row of three features (a Gaussian, a log-Gaussian and a
categorical column), whose every step's numbers are known, for the acquisition view and figures."""

from __future__ import annotations

import numpy as np

from vizvae.data.schema import ColumnType
from vizvae.inference.acquisition import AcquisitionRun

NAN = float("nan")
RUN_SCHEMA = [
    ColumnType("height", "gaussian", mean=10.0, std=2.0),
    ColumnType("income", "loggaussian", mean=0.0, std=1.0),
    ColumnType("zone", "categorical", categories=[1.0, 2.0, 24.0]),
]
RUN_TARGET = ColumnType("price", "gaussian", mean=20.0, std=5.0)
RUN_LABEL = ColumnType("kind", "categorical", categories=[0.0, 1.0, 2.0])


def hand_written_run() -> AcquisitionRun:
    """A hand-written run over one row with three features: acquired 2, then 0, then 1."""
    s = 4
    observed = np.array([[False] * 3, [False, False, True], [True, False, True], [True] * 3])[:, None]
    rewards = np.array([[0.1, 0.2, 0.5], [0.4, 0.3, NAN], [NAN, 0.9, NAN]])[:, None]
    acquired = np.array([[2], [0], [1]])
    y_samples = np.array([[-1.0, 0.0, 1.0, 2.0], [0.0, 0.5, 0.5, 1.0], [0.4, 0.6, 0.5, 0.5], [0.5] * s])[:, None]
    y_point = np.array([[0.5], [0.5], [0.5], [0.5]])
    imputed_mean = np.array([[0.0, np.log1p(3.0), 0.9], [0.5, 0.0, 2.0], [1.0, 0.2, 2.0], [1.0, np.log1p(4.0), 2.0]])
    imputed_low = imputed_mean - 1.0
    imputed_high = imputed_mean + 1.0
    imputed_low[:, 2] = imputed_mean[:, 2]  # a category's interval: codes
    imputed_high[:, 2] = imputed_mean[:, 2]
    return AcquisitionRun(
        strategy="mi", observed=observed, rewards=rewards, acquired=acquired, y_samples=y_samples, y_point=y_point,
        y_nll=np.array([[2.0], [1.0], [0.5], [0.2]]), error=np.array([[0.4], [0.3], [0.2], [0.1]]),
        imputed_mean=imputed_mean[:, None], imputed_low=imputed_low[:, None], imputed_high=imputed_high[:, None])
