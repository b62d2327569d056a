"""The model card's image grids as PNG bytes: prior samples, and test images above their
reconstructions. Arrays in; ``vizvae.train.cards`` draws the samples and stores the seed-0 grids
beside a checkpoint, so that the Model page shows a shipped model without loading weights.
"""

from __future__ import annotations

import numpy as np

from vizvae.viz.images import grid_png, paired_rows

PRIOR_COLUMNS = 8  # 64 prior samples make an 8×8 grid
RECONSTRUCTION_COLUMNS = 10  # one test image of every digit class per row


def prior_png(samples: np.ndarray, image_shape: tuple[int, ...]) -> bytes:
    """Decoded prior samples (n, features) as a grid of ``PRIOR_COLUMNS`` columns."""
    return grid_png(samples, image_shape, columns=PRIOR_COLUMNS)


def reconstruction_png(originals: np.ndarray, reconstructions: np.ndarray, image_shape: tuple[int, ...]) -> bytes:
    """Each row of test images (n, features) followed by the row of their reconstructions."""
    return grid_png(paired_rows(originals, reconstructions, columns=RECONSTRUCTION_COLUMNS), image_shape)
