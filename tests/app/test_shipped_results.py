"""A shipped model's first view is drawn from what ``python -m vizvae precompute`` stored with it: the
pages' defaults are the builder's, so nothing of the first render is computed (each computing
function is replaced by one that fails)."""

import pytest
import streamlit as st

import pages.disentanglement
import pages.global_local
import pages.latent_space  # noqa: F401 - imported before any patch below, so that none leaks into a page's names
from tests.app.helpers import errors, open_page, shipped
from vizvae.checkpoint import SHIPPED_DIR
from vizvae.evaluation import disentanglement
from vizvae.inference import global_local_store, latent


def must_not_run(*args, **kwargs):
    raise AssertionError("computed although the builder stored it")


@pytest.fixture()
def new_user(tmp_path, monkeypatch):
    """An empty user cache and empty Streamlit caches, as on a fresh server."""
    monkeypatch.setenv("VIZVAE_CACHE_DIR", str(tmp_path / "user"))
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def stored(name: str, prefix: str) -> str:
    if not list((SHIPPED_DIR / shipped(name) / "precomputed").glob(f"{prefix}-*.npz")):
        pytest.skip(f"{name} has no stored {prefix}: `python -m vizvae precompute {name}`")
    return name


@pytest.mark.parametrize("name", ["mnist-ugvae", "mnist-digits-ugvae"])
def test_the_global_local_first_view_is_read_not_computed(name, new_user, monkeypatch):
    monkeypatch.setattr(global_local_store, "batch_study", must_not_run)
    monkeypatch.setattr(pages.global_local, "grid_decoded", must_not_run)
    monkeypatch.setattr(global_local_store, "random_batch_centre", must_not_run)
    at = open_page("global_local", model=stored(name, "global-local-batches"))
    assert errors(at) == [] and len(at.dataframe) == 1  # Table 4.2 drawn from the stored study


def test_the_latent_space_points_are_read_not_encoded(new_user, monkeypatch):
    monkeypatch.setattr(latent, "encode_dataset", must_not_run)
    at = open_page("latent_space", model=stored("mnist-betavae-16d-b4", "encoding"))
    assert errors(at) == []


def test_the_disentanglement_information_is_read_not_measured(new_user, monkeypatch):
    monkeypatch.setattr(disentanglement, "measure_disentanglement", must_not_run)
    at = open_page("disentanglement", model=stored("shapes-betavae-b4", "disentanglement-information"))
    assert errors(at) == []
