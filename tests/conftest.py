"""Shared fixtures: embedded datasets and the shipped checkpoints, loaded once per session."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def mnist():
    from vizvae.data import load_dataset

    return load_dataset("mnist", binarize=True)


@pytest.fixture(scope="session")
def shipped_vae_2d():
    from vizvae.checkpoint import SHIPPED_DIR, load_checkpoint

    return load_checkpoint(SHIPPED_DIR / "mnist-vae-2d", device="cpu")
