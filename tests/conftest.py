"""Shared fixtures: embedded datasets and the shipped checkpoints, loaded once per session."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def empty_user_cache(tmp_path_factory, monkeypatch):
    """Every test meets an empty user cache of its own (``VIZVAE_CACHE_DIR``), never the home folder's:
    what one test computed and stored must not answer another's question. The shipped
    ``precomputed/`` files are read as a first visitor reads them."""
    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path_factory.mktemp("user-cache")))


@pytest.fixture
def one_thread():
    """For modules of tiny tensors (``pytestmark = pytest.mark.usefixtures("one_thread")``): on a busy
    two-core machine a second torch thread only adds synchronisation."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def mnist():
    from vizvae.data import load_dataset

    return load_dataset("mnist", binarize=True)


@pytest.fixture(scope="session")
def shipped_vae_2d():
    from vizvae.checkpoint import SHIPPED_DIR, load_checkpoint

    return load_checkpoint(SHIPPED_DIR / "mnist-vae-2d", device="cpu")
