"""Posterior: one test image's posterior three ways — the encoder Gaussian q_φ(z | x_O), HMC chains
started at its (inflated) version, and for 2-D latents the exact density normalised by quadrature
(thesis Fig. 5.1b) — with the chains' diagnostics and the posterior gaps (Cremer et al. 2018).

Widget / session-state keys (used by the tests): ``posterior_image``, ``posterior_mask``,
``posterior_half``, ``posterior_rate``, ``posterior_seed``, ``posterior_chains``,
``posterior_step_scale``, ``posterior_view``, ``posterior_dim_x``, ``posterior_dim_y``,
``posterior_step`` (the chain stepper), ``posterior_corner_dims``, ``posterior_gaps_on``.
Charts: ``posterior_plane``, ``posterior_marginals``, ``posterior_corner``, ``posterior_acceptance``,
``posterior_step_sizes``, ``posterior_ess``, ``posterior_iwae``, ``posterior_gap_bar``.
URL: ``image``, ``mask``, ``half``, ``rate``, ``seed``, ``chains``, ``scale``, ``view``, ``t``, ``gaps``.
"""

from __future__ import annotations

if __name__ == "__main__":  # a fresh server's first request for /posterior runs this file bare
    from pages._common import run_app

    run_app()  # before the imports below: the app's navigation must replace Streamlit's at once

from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from pages._common import (
    plain, background_task, checkpoint_stamp, current_ref, download_csv, download_png, job_runner, load_model,
    require_model, url_bound, url_value,
)
from vizvae.checkpoint import Checkpoint, checkpoint_dataset
from vizvae.data.masks import IMAGE_MASK_KINDS
from vizvae.kernels.hmc import step_size_growth, under_tuned
from vizvae.errors import VizvaeError
from vizvae.inference.cache import stored_result
from vizvae.inference.gaps import IWAE_KS, IWAE_REPLICATES, PosteriorGaps, posterior_gaps
from vizvae.inference.posterior import (
    ChainDiagnostics, PlaneView, PosteriorChains, PosteriorGrid, PosteriorTarget, chain_diagnostics, coordinate_axes,
    gaussian_in_view, grid_log_joint, posterior_chains, posterior_grid, principal_axes, trained_hmc, unvisited_mass,
)
from vizvae.inference.posterior_store import cached_posterior_result, posterior_params, posterior_row, posterior_target
from vizvae.inference.posterior_view import chain_plane_limits, is_inflated, masked_preview, most_moved_dimensions
from vizvae.models.capabilities import TunedHMCModel
from vizvae.viz.images import grid_png
from vizvae.viz.posterior import (
    acceptance_figure, corner_figure, dimension_table, ess_rhat_figure, gaps_figure, gaps_table, iwae_curve_figure,
    iwae_table, marginals_figure, posterior_plane_figure, step_size_heatmap,
)
from vizvae.viz.tables import csv_bytes

# one Gaussian latent space under a N(0, I) prior (the ε-space of all layers for the hierarchical ones)
POSTERIOR_KINDS = ("vae", "miwae", "pvae", "hmcvae", "hvae", "hhvae", "exported", "adapter")
MASK_LABELS = {"none": "none", "square": "square hole (14×14)", "half": "half hidden", "mcar": "missing at random"}
HALVES = ("top", "bottom", "left", "right")
STEP_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
CHAIN_COUNTS = (10, 20, 50, 100, 200)
DISPLAY_POINTS = 80  # contour grid for the plane figure
SHOWN_DECODES = 8
GAPS_DONE_KEY = "_posterior_gaps_done"
DEFAULT_TRANSITIONS = 10  # posterior_chains' T for a model without trained HMC
POSTERIOR_JOB, GAPS_JOB = "posterior", "posterior_gaps"  # background tasks of a view without stored results


# -- cached numbers: keyed on (model, image, mask, seed, ...) ------------------------------------------------
def _target(ref: str, image: int, mask_spec: tuple) -> PosteriorTarget:
    return posterior_target(load_model(ref), image, mask_spec)


def _stored_or(kind: str, ref: str, params: dict, compute):
    """A result shipped with the model or kept in the checkpoint cache, else ``compute()`` (then kept)."""
    return cached_posterior_result(kind, load_model(ref).path, params, compute)[0]


@st.cache_data(show_spinner="Running HMC…", max_entries=32)
def _chains(ref: str, stamp: tuple, image: int, mask_spec: tuple, seed: int, n_chains: int,
            scale: float) -> PosteriorChains:
    return _stored_or("posterior-chains", ref, posterior_params(image, mask_spec, seed, n_chains, scale),
                      lambda: posterior_chains(_target(ref, image, mask_spec), n_chains=n_chains, seed=seed,
                                               step_size_scale=scale))


@st.cache_data(show_spinner="Effective sample sizes and R-hat (ArviZ)…", max_entries=32)
def _diagnostics(ref: str, stamp: tuple, image: int, mask_spec: tuple, seed: int, n_chains: int,
                 scale: float) -> ChainDiagnostics:
    return _stored_or("posterior-diagnostics", ref, posterior_params(image, mask_spec, seed, n_chains, scale),
                      lambda: chain_diagnostics(_chains(ref, stamp, image, mask_spec, seed, n_chains, scale).result))


@st.cache_data(show_spinner="Integrating the exact posterior on a grid…", max_entries=32)
def _grid(ref: str, stamp: tuple, image: int, mask_spec: tuple) -> PosteriorGrid:
    return _stored_or("posterior-grid", ref, posterior_params(image, mask_spec),
                      lambda: posterior_grid(_target(ref, image, mask_spec)))


@st.cache_data(show_spinner=False, max_entries=32)
def _display_density(ref: str, stamp: tuple, image: int, mask_spec: tuple, limits: tuple,
                     log_evidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z1, z2, values = grid_log_joint(_target(ref, image, mask_spec), limits, DISPLAY_POINTS)
    return z1.numpy(), z2.numpy(), np.exp(values.numpy() - log_evidence)


@st.cache_data(show_spinner=False, max_entries=32)
def _decoded(ref: str, stamp: tuple, image: int, mask_spec: tuple, seed: int, n_chains: int,
             scale: float) -> tuple[np.ndarray, np.ndarray]:
    target = _target(ref, image, mask_spec)
    chains = _chains(ref, stamp, image, mask_spec, seed, n_chains, scale)
    encoder_mean = target.decoded_means(chains.encoder.mean[None])[0]
    samples = target.decoded_means(chains.samples[:SHOWN_DECODES])
    return encoder_mean.float().cpu().numpy(), samples.float().cpu().numpy()


@st.cache_data(show_spinner=False, max_entries=32)
def _gaps(ref: str, stamp: tuple, image: int, mask_spec: tuple, seed: int, n_chains: int,
          scale: float) -> PosteriorGaps:
    target = _target(ref, image, mask_spec)
    chains = _chains(ref, stamp, image, mask_spec, seed, n_chains, scale)
    quadrature = _grid(ref, stamp, image, mask_spec).log_evidence if target.latent_dim == 2 else None
    return _stored_or("posterior-gaps", ref, posterior_params(image, mask_spec, seed, n_chains, scale),
                      lambda: posterior_gaps(target, hmc_samples=chains.samples, log_evidence_quadrature=quadrature,
                                             seed=seed))


def _is_stored(ref: str, kinds: tuple[str, ...], params: dict) -> bool:
    """Whether results ``kinds`` at ``params`` are shipped with the model or in its cache (read at once)."""
    folder = load_model(ref).path
    return folder is not None and all(stored_result(folder, kind, params) is not None for kind in kinds)


def _warm_posterior(report, args: tuple, two_d: bool) -> bool:
    """Background work: the chains, the exact grid of a 2-D latent, the diagnostics and the decodes of
    ``args`` computed into the page's caches, so that the page then draws at once."""
    report(0.0, "HMC chains")
    _chains(*args)
    if two_d:
        report(0.5, "the exact posterior by quadrature")
        _grid(*args[:4])
    report(0.8, "effective sample sizes and R-hat")
    _diagnostics(*args)
    report(0.95, "decoding the samples")
    _decoded(*args)
    return True


def _warm_gaps(report, args: tuple) -> bool:
    """Background work: the gaps of ``args`` computed into the page's cache."""
    report(0.0, "the best Gaussian q* (300 Adam steps on this image's ELBO), then 5000 importance weights")
    _gaps(*args)
    return True


def posterior_ready(args: tuple, two_d: bool) -> bool:
    """Whether the view's chains (and grid, diagnostics) are at hand: stored, or computed in the
    background with its progress and a Cancel button (other inputs cancel it)."""
    params = posterior_params(*args[2:])
    kinds = ("posterior-chains", "posterior-diagnostics")
    if _is_stored(args[0], kinds, params) and (not two_d or _is_stored(args[0], ("posterior-grid",),
                                                                       posterior_params(*args[2:4]))):
        return True
    return background_task(POSTERIOR_JOB, key=args, work=_warm_posterior, args=(args, two_d),
                           label="Computing the posterior",
                           caps=dict(chain_transitions=args[5] * chain_length(args[0]))) is not None


def chain_length(ref: str) -> int:
    """T of the posterior's chains: the trained sampler's own, else ``posterior_chains``' default."""
    hyper = trained_hmc(load_model(ref).model)
    return int(hyper.step_sizes.shape[0]) if hyper is not None else DEFAULT_TRANSITIONS


def _gaps_ready(args: tuple) -> bool:
    """Whether this session already computed the gaps for these arguments (so the cache is warm and
    the plane and marginals can show q* without waiting)."""
    return args in st.session_state.setdefault(GAPS_DONE_KEY, set())


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _in_range(low: int, high: int):
    return lambda value: isinstance(value, int) and low <= value <= high


@dataclass(frozen=True)
class Posterior:
    """What the page has computed for one (model, image, mask, seed, chains, step scale)."""

    args: tuple  # the cache key: (ref, stamp, image, mask_spec, seed, n_chains, scale)
    target: PosteriorTarget
    chains: PosteriorChains
    grid: PosteriorGrid | None  # the exact posterior by quadrature, for a 2-D latent
    gaps: PosteriorGaps | None  # once asked for and computed

    @property
    def samples(self) -> np.ndarray:
        return self.chains.samples.cpu().numpy()  # (chains, latent)

    @property
    def encoder(self) -> tuple[np.ndarray, np.ndarray]:
        return self.chains.encoder.mean.cpu().numpy(), self.chains.encoder.std.cpu().numpy()

    @property
    def best(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The best Gaussian q* (mean, std), once the gaps are computed."""
        return (self.gaps.best.mean.cpu().numpy(), self.gaps.best.std.cpu().numpy()) if self.gaps else None


# -- controls -------------------------------------------------------------------------------------------------
def mask_controls(mask_kind: str) -> tuple:
    """The mask's details: (kind, hidden half or "", missing rate or 0)."""
    half_args = dict(key="posterior_half", param="half", default="top", valid=lambda h: h in HALVES)
    rate_args = dict(key="posterior_rate", param="rate", default=50, parse=int, valid=_in_range(10, 90))
    if mask_kind == "half":
        return mask_kind, url_bound(st.selectbox, "Hidden half", options=HALVES, **half_args), 0.0
    if mask_kind == "mcar":
        rate = url_bound(st.slider, "Missing (%)", min_value=10, max_value=90, step=10, **rate_args)
        return mask_kind, "", rate / 100
    for args in (half_args, rate_args):  # kept for when they are drawn again
        url_value(**args)
    st.caption("The square hole sits at a random place fixed per image." if mask_kind == "square"
               else "All pixels observed.")
    return mask_kind, "", 0.0


def posterior_controls(n_test: int) -> tuple[int | str, tuple, int, int, float]:
    """(test image or atlas item, mask_spec, seed, number of chains, step-size scale)."""
    controls = st.columns([1, 1.3, 1.2, 1, 1.2, 1.2])
    linked = atlas_item_in_url()
    image: int | str = url_bound(controls[0].number_input, "Test image", key="posterior_image", param="image",
                                 default=0, parse=int, valid=_in_range(0, n_test - 1), min_value=0,
                                 max_value=n_test - 1, step=1, disabled=linked is not None,
                                 help=f"Row of the test set (0–{n_test - 1}).")
    mask_kind = url_bound(controls[1].selectbox, "Mask", key="posterior_mask", param="mask", default="none",
                          valid=lambda m: m in IMAGE_MASK_KINDS, options=IMAGE_MASK_KINDS, format_func=MASK_LABELS.get,
                          help="Hidden pixels are left out of p(x_O | z): the posterior of the observed part.")
    with controls[2]:
        mask_spec = mask_controls(mask_kind)
    seed = url_bound(controls[3].number_input, "Seed", key="posterior_seed", param="seed", default=0, parse=int,
                     valid=_in_range(0, 9999), min_value=0, max_value=9999, step=1,
                     help="Seeds the chains' starts and momenta, and the gap estimators.")
    n_chains = url_bound(controls[4].select_slider, "Chains", key="posterior_chains", param="chains", default=50,
                         parse=int, valid=lambda c: c in CHAIN_COUNTS, options=CHAIN_COUNTS)
    scale = url_bound(controls[5].select_slider, "Step sizes ×", key="posterior_step_scale", param="scale",
                      default=1.0, parse=float, valid=lambda s: s in STEP_SCALES, format=_number, options=STEP_SCALES,
                      help="Multiplies every step size φ: too small and the chains crawl, too large and they are "
                           "rejected or diverge.")
    if linked is not None:
        key, _, item = linked.rpartition(":")
        st.caption(f"Item {int(item):,} of the atlas' {plain(key)} (from the Latent atlas).")
        st.button("Back to the test images", key="posterior_leave_atlas", on_click=_leave_atlas)
    return linked or int(image), mask_spec, int(seed), int(n_chains), float(scale)


def atlas_item_in_url() -> str | None:
    """``"<source>:<item>"`` when the URL names an item of the Latent atlas (``data`` and ``item``,
    from its "Open in Posterior" link); it replaces the test image until the link is left."""
    key, item = st.query_params.get("data"), st.query_params.get("item")
    if not key or key == "test" or not item or not item.isdigit() or len(key) > 300:
        return None
    return f"{key}:{int(item)}"


def _leave_atlas() -> None:
    for param in ("data", "item"):
        st.query_params.pop(param, None)


def compute_posterior(ref: str, image: int, mask_spec: tuple, seed: int, n_chains: int, scale: float) -> Posterior:
    args = (ref, checkpoint_stamp(ref), image, mask_spec, seed, n_chains, scale)
    target = _target(ref, image, mask_spec)
    grid = _grid(*args[:4]) if target.latent_dim == 2 else None
    if "posterior_gaps_on" not in st.session_state:
        st.session_state["posterior_gaps_on"] = st.query_params.get("gaps") == "1"
    gaps = _gaps(*args) if st.session_state["posterior_gaps_on"] and _gaps_ready(args) else None
    return Posterior(args, target, _chains(*args), grid, gaps)


# -- the image and the chains' settings ---------------------------------------------------------------------------
def image_view(name: str, x: np.ndarray, image_shape: tuple, posterior: Posterior, mask_kind: str) -> None:
    _, _, image, *_ = posterior.args
    encoder_decode, hmc_decodes = _decoded(*posterior.args)
    strip = np.stack([masked_preview(x, posterior.target.mask), encoder_decode, *hmc_decodes])
    strip_png = grid_png(strip, image_shape, columns=len(strip), scale=3)
    grey = ", missing pixels grey" if posterior.target.mask is not None else ""
    what = f"Test image {image}" if isinstance(image, int) else f"Atlas item {plain(image)}"
    st.image(strip_png, caption=f"{what} ({MASK_LABELS[mask_kind]}{grey}); decoded at the encoder mean; "
             f"decoded at {len(hmc_decodes)} HMC samples.")
    download_png("Image and decodes (PNG)", strip_png, f"{name}-posterior-{str(image).replace(':', '-')}.png",
                 key="posterior_png")


def tuning_note(posterior: Posterior) -> None:
    """The trained step sizes against the ones training started from, and a warning when the sampler is
    under-tuned: acceptance over 0.95 with steps still near their start (the chains creep)."""
    model = posterior.target.model
    if not (posterior.chains.trained and isinstance(model, TunedHMCModel)):
        return
    initial = model.initial_step_sizes()
    growth = step_size_growth(model.hmc.step_sizes.detach().cpu(), initial)
    acceptance = float(posterior.chains.result.acceptance_probs.mean())
    st.caption(f"Trained step sizes: mean {float(model.hmc.step_sizes.mean()):.3g}, {growth:.2f}× the ones training "
               f"started from (mean {float(initial.mean()):.3g}, from {float(initial.min()):.2g} to "
               f"{float(initial.max()):.2g}).")
    if under_tuned(acceptance, growth):
        st.warning(f"This sampler looks under-tuned: acceptance {acceptance:.2f} with step sizes only {growth:.2f}× "
                   "their start. The chains creep, so T transitions move them little from the encoder's Gaussian; "
                   "try **Step sizes ×** 2–4 and watch acceptance fall towards ~0.65.", icon=":material/speed:")


def hmc_summary(posterior: Posterior) -> None:
    chains, scale, n_chains = posterior.chains, posterior.args[6], posterior.args[5]
    how = ("the model's trained step sizes and inflation" if chains.trained and scale == 1.0 else
           f"the model's trained step sizes ×{scale:g} and inflation" if chains.trained else
           f"step sizes adapted by a discarded warm-up (dual averaging to acceptance 0.65, a diagonal mass from "
           f"its draws) ×{scale:g}, no inflation: this model was trained without HMC, and the chains shown start "
           "again at the encoder's Gaussian")
    st.markdown(f"**HMC**: {n_chains} chains × T = {chains.chain.shape[0] - 1} transitions × LF = "
                f"{chains.n_leapfrog} leapfrog steps, with {how}.")
    tuning_note(posterior)
    metrics = st.columns(3)
    metrics[0].metric("Mean acceptance", f"{float(chains.result.acceptance_probs.mean()):.2f}")
    metrics[1].metric("Divergences", f"{chains.result.n_divergences()}")
    if posterior.grid is not None:
        metrics[2].metric("log p(x_O)", f"{posterior.grid.log_evidence:.2f}", help="Exact, by quadrature on a grid.")
    elif posterior.gaps is not None:
        source = posterior.gaps.log_evidence_source  # "IWAE(5000)", "HMC-IS(5000)": too long for the label
        metrics[2].metric("log p(x_O) ≈", evidence_text(posterior.gaps, 2),
                          help=f"Estimated by {source}, ± its Monte Carlo standard error.")
        metrics[2].caption(f"by {source}")


# -- the posterior and the chains ------------------------------------------------------------------------------
def plane_choice(latent_dim: int, samples: np.ndarray) -> tuple[PlaneView, str]:
    """The plane the chains are drawn in, and a sentence saying which it is."""
    if latent_dim == 2:
        return coordinate_axes(2, 0, 1), "The latent plane itself."
    view_cols = st.columns([2, 1, 1])
    view_labels = {"dims": "two latent dimensions", "pca": "top-2 principal axes of the HMC samples"}
    view = url_bound(view_cols[0].radio, "View", key="posterior_view", param="view", default="pca",
                     valid=lambda v: v in view_labels, options=list(view_labels), horizontal=True,
                     format_func=view_labels.get)
    if view == "pca":
        axes, explained = principal_axes(samples)
        return axes, (f"The plane through the HMC samples' mean spanned by their top two principal axes "
                      f"({explained[0]:.0%} and {explained[1]:.0%} of their variance).")
    for key, default in (("posterior_dim_x", 0), ("posterior_dim_y", 1)):
        if st.session_state.get(key, latent_dim) >= latent_dim:
            st.session_state[key] = default
    dim_x = view_cols[1].selectbox("Horizontal", range(latent_dim), key="posterior_dim_x", format_func=lambda d: f"z{d}")
    dim_y = view_cols[2].selectbox("Vertical", range(latent_dim), key="posterior_dim_y", format_func=lambda d: f"z{d}")
    return (coordinate_axes(latent_dim, dim_x, dim_y),
            f"The plane of z{dim_x} and z{dim_y} (other dimensions not shown, not fixed).")


def plane_view(posterior: Posterior) -> None:
    st.header("Posterior and chains")
    chains, grid = posterior.chains, posterior.grid
    chain = chains.chain.cpu().numpy()  # (T+1, chains, latent)
    n_transitions = chain.shape[0] - 1
    view, view_note = plane_choice(posterior.target.latent_dim, posterior.samples)
    encoder_mean, encoder_std = posterior.encoder
    proposal_std = chains.proposal.std.cpu().numpy()
    plane_chain = view.project(chain)
    encoder_2d = gaussian_in_view(view, encoder_mean, encoder_std)
    proposal_2d = gaussian_in_view(view, encoder_mean, proposal_std) if is_inflated(proposal_std, encoder_std) else None
    best_2d = gaussian_in_view(view, *posterior.best) if posterior.best else None
    limits = chain_plane_limits(plane_chain, [g for g in (encoder_2d, proposal_2d, best_2d) if g is not None],
                                grid.mass_limits() if grid is not None else None)
    contours = _display_density(*posterior.args[:4], limits, grid.log_evidence) if grid is not None else None
    step = url_bound(st.slider, "Transition t (chain stepper)", key="posterior_step", param="t",
                     default=n_transitions, parse=int, valid=_in_range(0, n_transitions), min_value=0,
                     max_value=n_transitions, help="t = 0: the draws from the initial proposal; t = T: the HMC samples.")
    plane = posterior_plane_figure(
        plane_chain, step, encoder_2d, proposal_2d, contours, best_2d,
        accepted=chains.result.is_accepted.cpu().numpy(), divergent=chains.result.divergences.cpu().numpy(),
        limits=limits, axis_titles=view.titles)
    st.plotly_chart(plane, key="posterior_plane")
    contour_note = (" Blue contours: the exact posterior p(z | x_O), normalised by quadrature." if grid is not None else
                    " No exact contours: quadrature needs a 2-D latent.")
    st.caption(view_note + contour_note + " Orange: the encoder's 2σ ellipse (dashed: the inflated initial proposal"
               + ("; dotted purple: the best Gaussian q*" if best_2d else "") + "). Chains at t are green when their "
               "transition t was accepted, yellow when rejected, red when it diverged; grey lines trace their paths.")


# -- marginals ------------------------------------------------------------------------------------------------
def marginals_view(posterior: Posterior) -> None:
    st.header("Marginals")
    samples, (encoder_mean, encoder_std), grid = posterior.samples, posterior.encoder, posterior.grid
    latent_dim = posterior.target.latent_dim
    exact = None
    if grid is not None:
        marginal_1, marginal_2 = grid.marginals()
        exact = {0: (grid.z1, marginal_1), 1: (grid.z2, marginal_2)}
    st.plotly_chart(marginals_figure(samples, encoder_mean, encoder_std, range(latent_dim), exact=exact,
                                     best=posterior.best), key="posterior_marginals")
    st.caption(f"Per dimension: the {len(samples)} HMC samples (green histogram) against the encoder's Gaussian "
               "(orange)" + (" and the exact marginal (blue)" if exact else "")
               + (" and q* (dotted purple)" if posterior.best else "") + ".")
    if latent_dim > 2:
        corner_view(samples, encoder_mean, encoder_std)


def corner_view(samples: np.ndarray, encoder_mean: np.ndarray, encoder_std: np.ndarray) -> None:
    latent_dim = samples.shape[1]
    if "posterior_corner_dims" not in st.session_state or not all(
            d < latent_dim for d in st.session_state["posterior_corner_dims"]):
        st.session_state["posterior_corner_dims"] = most_moved_dimensions(samples, encoder_mean, encoder_std)
    corner_dims = st.multiselect("Corner view of", list(range(latent_dim)), key="posterior_corner_dims",
                                 format_func=lambda d: f"z{d}", max_selections=5,
                                 help="By default the four dimensions where HMC moved furthest from the encoder.")
    if len(corner_dims) >= 2:
        st.plotly_chart(corner_figure(samples, encoder_mean, encoder_std, corner_dims), key="posterior_corner")
    else:
        st.info("Pick at least two dimensions for the corner view.")


# -- diagnostics ----------------------------------------------------------------------------------------------
def diagnostics_view(name: str, posterior: Posterior) -> None:
    st.header("Chain diagnostics")
    diagnostics: ChainDiagnostics = _diagnostics(*posterior.args)
    cols = st.columns(4)
    cols[0].metric("Mean acceptance", f"{diagnostics.mean_acceptance.mean():.2f}", help="Optimal ≈ 0.65 (Neal 2011).")
    cols[1].metric("Divergent transitions", f"{diagnostics.n_divergences} of {diagnostics.acceptance.size}")
    cols[2].metric("Smallest bulk ESS", f"{diagnostics.ess.min():.0f} of {diagnostics.n_draws}")
    cols[3].metric("Largest R-hat", f"{diagnostics.rhat.max():.3f}")
    mixing_warnings(posterior, diagnostics)
    left, right = st.columns(2)
    with left:
        st.plotly_chart(acceptance_figure(diagnostics.acceptance, diagnostics.divergences,
                                          title="Acceptance per transition"), key="posterior_acceptance")
    with right:
        st.plotly_chart(step_size_heatmap(posterior.chains.step_sizes.cpu().numpy(), title="Step sizes φ (T × dim)"),
                        key="posterior_step_sizes")
    st.plotly_chart(ess_rhat_figure(diagnostics.ess, diagnostics.rhat, diagnostics.n_draws,
                                    title="Across chains (ArviZ)"), key="posterior_ess")
    n_transitions = posterior.chains.chain.shape[0] - 1
    st.caption(f"ESS and R-hat of the states after transitions 1…{n_transitions} of all {posterior.args[5]} chains. "
               "The chains are short and start at the proposal, so R-hat well above 1 means they still remember "
               "where they started. The HMC objective (eq. 5.9) at the final states: E log p(x_O, z_T) = "
               f"{diagnostics.mean_log_joint:.2f} nats.")
    table = dimension_table(*posterior.encoder, posterior.samples, diagnostics.ess, diagnostics.rhat)
    download_csv("Per-dimension summary (CSV)", csv_bytes(table), f"{name}-posterior-{posterior.args[2]}-dims.csv",
                 key="posterior_dims_csv")


UNMIXED_RHAT = 1.1  # above it, the chains' states still depend on where they started
UNVISITED_MASS = 0.1  # exact posterior mass no chain state reached: above it, a mode or ridge is missed


def mixing_warnings(posterior: Posterior, diagnostics: ChainDiagnostics) -> None:
    """Say when the chains have not mixed (R-hat), and, where the exact 2-D posterior is known, how
    much of its mass they never visited."""
    rhat = np.asarray(diagnostics.rhat, dtype=float)
    unmixed = int((rhat > UNMIXED_RHAT).sum())
    if unmixed:
        st.warning(f"The chains have not mixed: R-hat is up to {np.nanmax(rhat):.2f} (over {UNMIXED_RHAT}) on "
                   f"{unmixed} of {rhat.size} dimension(s), so their states still depend on where they started. "
                   "Read the marginals with care; more transitions or chains would tell.", icon=":material/warning:")
    if posterior.grid is not None:
        states = posterior.chains.chain[1:].reshape(-1, 2).cpu().numpy()  # every state after the start
        missed = unvisited_mass(posterior.grid, states)
        if missed > UNVISITED_MASS:
            st.warning(f"The chains never visit a part of the posterior holding {missed:.0%} of its mass (exact, "
                       "by quadrature): a mode or a ridge is missed. Compare the chains with the exact contours "
                       "above.", icon=":material/warning:")


# -- gaps -----------------------------------------------------------------------------------------------------
def gaps_switch(posterior: Posterior) -> None:
    """The toggle; on the first switch-on, compute the gaps and draw the page again with q*."""
    st.header("Posterior gaps")
    st.toggle("Compute the gaps (best Gaussian q*, IWAE(K) for K up to 5000)", key="posterior_gaps_on",
              help="Takes a few seconds per image; cached for the same image, mask and seed.")
    if st.session_state["posterior_gaps_on"]:
        st.query_params["gaps"] = "1"
    else:
        st.query_params.pop("gaps", None)
    if not st.session_state["posterior_gaps_on"]:
        job_runner().cancel(GAPS_JOB, "switched off")
    elif posterior.gaps is None:
        stored = _is_stored(posterior.args[0], ("posterior-gaps",), posterior_params(*posterior.args[2:]))
        if stored or background_task(GAPS_JOB, key=posterior.args, work=_warm_gaps, args=(posterior.args,),
                                     label="Computing the gaps", caps=dict(iwae_k=max(IWAE_KS))) is not None:
            st.session_state[GAPS_DONE_KEY].add(posterior.args)
            st.rerun()  # draw the plane and the marginals again, now with q*


def evidence_text(gaps: PosteriorGaps, decimals: int) -> str:
    """log p(x_O) as shown: "−151.90 ± 0.30" for an estimate (its Monte Carlo standard error)."""
    se = gaps.log_evidence_se
    return f"{gaps.log_evidence:.{decimals}f}" + (f" ± {se:.{decimals}f}" if se is not None else "")


def gaps_view(name: str, image: int, gaps: PosteriorGaps) -> None:
    cols = st.columns(4)
    cols[0].metric(f"log p(x_O), {gaps.log_evidence_source}", evidence_text(gaps, 3),
                   help=None if gaps.log_evidence_se is None else
                   f"The mean of {IWAE_REPLICATES} independent {gaps.log_evidence_source} estimates, ± the Monte "
                   "Carlo standard error of that mean.")
    cols[1].metric("ELBO(q_φ), encoder", f"{gaps.elbo_encoder:.3f}")
    cols[2].metric("Amortisation gap", f"{gaps.amortisation_gap:.3f}", help="ELBO(q*) − ELBO(q_φ)")
    cols[3].metric("Approximation gap", f"{gaps.approximation_gap:.3f}", help="log p(x_O) − ELBO(q*)")
    left, right = st.columns([3, 2])
    with left:
        label = f"log p(x) by {gaps.log_evidence_source}" if gaps.log_evidence_source == "quadrature" else \
            f"log p(x) ≈ {gaps.log_evidence_source}"
        st.plotly_chart(iwae_curve_figure(gaps.ks, gaps.iwae, gaps.hmc_iwae, gaps.elbo_encoder, gaps.elbo_best,
                                          gaps.log_evidence, label, title="Bounds on log p(x_O)",
                                          iwae_se=gaps.iwae_se, hmc_iwae_se=gaps.hmc_iwae_se),
                        key="posterior_iwae")
    with right:
        st.plotly_chart(gaps_figure(gaps.approximation_gap, gaps.amortisation_gap, title="Where the gap comes from"),
                        key="posterior_gap_bar")
        rows = {"log p(x_O) (" + gaps.log_evidence_source + ")": gaps.log_evidence, "ELBO(q*)": gaps.elbo_best,
                "ELBO(q_φ)": gaps.elbo_encoder, "amortisation gap": gaps.amortisation_gap,
                "approximation gap": gaps.approximation_gap, f"IWAE({gaps.ks[-1]})": gaps.iwae[-1]}
        if gaps.hmc_iwae is not None:
            rows[f"HMC-IS({gaps.ks[-1]})"] = gaps.hmc_iwae[-1]
        if gaps.log_evidence_se is not None:
            rows[f"standard error of {gaps.log_evidence_source}"] = gaps.log_evidence_se
        st.dataframe(gaps_table(rows), hide_index=True)
    ess_note = f"Kish ESS of each {gaps.ks[-1]} importance weights: encoder {gaps.iwae_ess:.0f}" + (
        f", HMC Gaussian {gaps.hmc_ess:.0f}" if gaps.hmc_ess is not None else "") + "."
    if gaps.iwae_se is not None:
        ess_note += (f" Each K uses every draw: IWAE({gaps.ks[-1]}) is the mean of {IWAE_REPLICATES} independent "
                     "estimates, and the bars are Monte Carlo standard errors from the spread of the groups.")
    st.caption("IWAE(K) uses the encoder as proposal; IS(K) a full-covariance Gaussian fitted to the final HMC "
               "samples and widened ×1.25 — HMC's own q^(T) has no density to weight by, and the mean log joint "
               "of its samples is not a bound. Both are lower bounds in expectation; a single estimate at large K "
               "can land slightly above log p(x) when a few weights dominate. " + ess_note +
               " q* is the best diagonal Gaussian for this image alone (Adam on its ELBO from q_φ, fixed seed).")
    download_csv("Bounds (CSV)", csv_bytes(iwae_table(gaps.ks, gaps.iwae, gaps.hmc_iwae, gaps.iwae_se,
                                                      gaps.hmc_iwae_se)),
                 f"{name}-posterior-{str(image).replace(':', '-')}-bounds.csv", key="posterior_bounds_csv")


# -- the page -------------------------------------------------------------------------------------------------
def render() -> None:
    checkpoint: Checkpoint = require_model(kinds=POSTERIOR_KINDS, min_latent=2, data_kinds=("image",),
                                           purpose="The posterior page")
    ref = current_ref()
    dataset = checkpoint_dataset(checkpoint.config)
    latent_dim = checkpoint.model.latent_dim
    st.title("Posterior")
    st.caption(f"**{plain(checkpoint.name)}**: {latent_dim}-D latent. One test image's posterior p(z | x_O): the encoder's "
               "Gaussian, HMC chains started from it, and — for a 2-D latent — the exact density by quadrature.")
    image, mask_spec, seed, n_chains, scale = posterior_controls(len(dataset.x_test))
    try:
        x = posterior_row(checkpoint, image)[0]
    except VizvaeError as err:
        st.error(f"That atlas item could not be opened: {plain(err)}.", icon=":material/error:")
        st.stop()
    if not posterior_ready((ref, checkpoint_stamp(ref), image, mask_spec, seed, n_chains, scale), latent_dim == 2):
        st.stop()
    posterior = compute_posterior(ref, image, mask_spec, seed, n_chains, scale)
    left, right = st.columns([3, 2])
    with left:
        image_view(checkpoint.name, x, tuple(dataset.image_shape), posterior, mask_spec[0])
    with right:
        hmc_summary(posterior)
    plane_view(posterior)
    marginals_view(posterior)
    diagnostics_view(checkpoint.name, posterior)
    gaps_switch(posterior)
    if posterior.gaps is not None:
        gaps_view(checkpoint.name, image, posterior.gaps)
    else:
        st.info("Switch on to find the best Gaussian q* for this image and the IWAE(K) curve up to K = 5000, and "
                "split log p(x_O) − ELBO(q_φ) into the approximation and the amortisation gap.")

