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

import numpy as np
import streamlit as st
import torch

from pages._common import (
    checkpoint_stamp, current_ref, download_csv, download_png, load_model, remember_in_url, require_model,
    run_through_entrypoint, url_widget_state,
)
from vizvae.checkpoint import checkpoint_dataset
from vizvae.data.masks import IMAGE_MASK_KINDS, image_mask
from vizvae.inference.gaps import PosteriorGaps, posterior_gaps
from vizvae.inference.posterior import (
    ChainDiagnostics, PosteriorChains, PosteriorGrid, PosteriorTarget, chain_diagnostics, coordinate_axes,
    gaussian_in_view, grid_log_joint, plane_limits, posterior_chains, posterior_grid, principal_axes,
)
from vizvae.viz.images import grid_png
from vizvae.viz.posterior import (
    acceptance_figure, corner_figure, dimension_table, ess_rhat_figure, gaps_figure, gaps_table, iwae_curve_figure,
    iwae_table, marginals_figure, posterior_plane_figure, step_size_heatmap,
)
from vizvae.viz.tables import csv_bytes

run_through_entrypoint()  # before anything is drawn: see its docstring

# one Gaussian latent space under a N(0, I) prior (the ε-space of all layers for the hierarchical ones)
POSTERIOR_KINDS = ("vae", "miwae", "pvae", "hmcvae", "hvae", "hhvae")
MASK_LABELS = {"none": "none", "square": "square hole (14×14)", "half": "half hidden", "mcar": "missing at random"}
HALVES = ("top", "bottom", "left", "right")
STEP_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
CHAIN_COUNTS = (10, 20, 50, 100, 200)
DISPLAY_POINTS = 80  # contour grid for the plane figure
SHOWN_DECODES = 8
GAPS_DONE_KEY = "_posterior_gaps_done"


# -- cached numbers: keyed on (model, image, mask, seed, ...) ------------------------------------------------
def _target(ref: str, image: int, mask_spec: tuple) -> PosteriorTarget:
    checkpoint = load_model(ref)
    dataset = checkpoint_dataset(checkpoint.config)
    kind, half, rate = mask_spec
    mask = image_mask(kind, tuple(dataset.image_shape[1:]), seed=image, hidden_half=half, missing_rate=rate)
    return PosteriorTarget.from_row(checkpoint.model, dataset.x_test[image], mask)


@st.cache_data(show_spinner="Running HMC…", max_entries=32)
def _chains(ref: str, stamp: tuple, image: int, mask_spec: tuple, seed: int, n_chains: int,
            scale: float) -> PosteriorChains:
    return posterior_chains(_target(ref, image, mask_spec), n_chains=n_chains, seed=seed, step_size_scale=scale)


@st.cache_data(show_spinner="Effective sample sizes and R-hat (ArviZ)…", max_entries=32)
def _diagnostics(ref: str, stamp: tuple, image: int, mask_spec: tuple, seed: int, n_chains: int,
                 scale: float) -> ChainDiagnostics:
    return chain_diagnostics(_chains(ref, stamp, image, mask_spec, seed, n_chains, scale).result)


@st.cache_data(show_spinner="Integrating the exact posterior on a grid…", max_entries=32)
def _grid(ref: str, stamp: tuple, image: int, mask_spec: tuple) -> PosteriorGrid:
    return posterior_grid(_target(ref, image, mask_spec))


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
    return posterior_gaps(target, hmc_samples=chains.samples, log_evidence_quadrature=quadrature, seed=seed)


def _gaps_ready(args: tuple) -> bool:
    """Whether this session already computed the gaps for these arguments (so the cache is warm and
    the plane and marginals can show q* without waiting)."""
    return args in st.session_state.setdefault(GAPS_DONE_KEY, set())


def _mask_preview(x: np.ndarray, mask: torch.Tensor | None) -> np.ndarray:
    """Observed pixels as they are, missing ones mid-grey."""
    if mask is None:
        return x
    return np.where(mask.cpu().numpy(), x, 0.5)


# -- the model ------------------------------------------------------------------------------------------------
checkpoint = require_model(kinds=POSTERIOR_KINDS, min_latent=2, data_kinds=("image",), purpose="The posterior page")
ref = current_ref()
stamp = checkpoint_stamp(ref)
model = checkpoint.model
dataset = checkpoint_dataset(checkpoint.config)
image_shape = tuple(dataset.image_shape)
latent_dim = model.latent_dim
n_test = len(dataset.x_test)

st.title("Posterior")
st.caption(f"**{checkpoint.name}**: {latent_dim}-D latent. One test image's posterior p(z | x_O): the encoder's "
           "Gaussian, HMC chains started from it, and — for a 2-D latent — the exact density by quadrature.")

# -- controls -------------------------------------------------------------------------------------------------
controls = st.columns([1, 1.3, 1.2, 1, 1.2, 1.2])
url_widget_state("posterior_image", "image", 0, parse=int, valid=lambda i: isinstance(i, int) and 0 <= i < n_test)
controls[0].number_input("Test image", 0, n_test - 1, step=1, key="posterior_image",
                         help=f"Row of the test set (0–{n_test - 1}).")
url_widget_state("posterior_mask", "mask", "none", valid=lambda m: m in IMAGE_MASK_KINDS)
controls[1].selectbox("Mask", IMAGE_MASK_KINDS, key="posterior_mask", format_func=MASK_LABELS.get,
                      help="Hidden pixels are left out of p(x_O | z): the posterior of the observed part.")
mask_kind = st.session_state["posterior_mask"]
with controls[2]:
    url_widget_state("posterior_half", "half", "top", valid=lambda h: h in HALVES)
    url_widget_state("posterior_rate", "rate", 50, parse=int, valid=lambda r: isinstance(r, int) and 10 <= r <= 90)
    if mask_kind == "half":
        st.selectbox("Hidden half", HALVES, key="posterior_half")
    elif mask_kind == "mcar":
        st.slider("Missing (%)", 10, 90, step=10, key="posterior_rate")
    else:
        st.caption("The square hole sits at a random place fixed per image." if mask_kind == "square"
                   else "All pixels observed.")
url_widget_state("posterior_seed", "seed", 0, parse=int, valid=lambda s: isinstance(s, int) and 0 <= s <= 9999)
controls[3].number_input("Seed", 0, 9999, step=1, key="posterior_seed",
                         help="Seeds the chains' starts and momenta, and the gap estimators.")
url_widget_state("posterior_chains", "chains", 50, parse=int, valid=lambda c: c in CHAIN_COUNTS)
controls[4].select_slider("Chains", CHAIN_COUNTS, key="posterior_chains")
url_widget_state("posterior_step_scale", "scale", 1.0, parse=float, valid=lambda s: s in STEP_SCALES)
controls[5].select_slider("Step sizes ×", STEP_SCALES, key="posterior_step_scale",
                          help="Multiplies every step size φ: too small and the chains crawl, too large and they "
                               "are rejected or diverge.")
for key, param in (("posterior_image", "image"), ("posterior_mask", "mask"), ("posterior_seed", "seed"),
                   ("posterior_chains", "chains"), ("posterior_step_scale", "scale")):
    remember_in_url(key, param, format=lambda v: f"{v:g}" if isinstance(v, float) else str(v))
if mask_kind == "half":
    remember_in_url("posterior_half", "half")
if mask_kind == "mcar":
    remember_in_url("posterior_rate", "rate")

image = int(st.session_state["posterior_image"])
seed = int(st.session_state["posterior_seed"])
n_chains = int(st.session_state["posterior_chains"])
scale = float(st.session_state["posterior_step_scale"])
mask_spec = (mask_kind, st.session_state["posterior_half"] if mask_kind == "half" else "",
             st.session_state["posterior_rate"] / 100 if mask_kind == "mcar" else 0.0)
args = (ref, stamp, image, mask_spec, seed, n_chains, scale)
target = _target(ref, image, mask_spec)

chains = _chains(*args)
chain = chains.chain.cpu().numpy()  # (T+1, chains, latent)
samples = chains.samples.cpu().numpy()
encoder_mean, encoder_std = chains.encoder.mean.cpu().numpy(), chains.encoder.std.cpu().numpy()
proposal_std = chains.proposal.std.cpu().numpy()
n_transitions = chain.shape[0] - 1
grid = _grid(ref, stamp, image, mask_spec) if latent_dim == 2 else None
if "posterior_gaps_on" not in st.session_state:
    st.session_state["posterior_gaps_on"] = st.query_params.get("gaps") == "1"
gaps = _gaps(*args) if st.session_state["posterior_gaps_on"] and _gaps_ready(args) else None

# -- the image ------------------------------------------------------------------------------------------------
left, right = st.columns([3, 2])
with left:
    encoder_decode, hmc_decodes = _decoded(*args)
    x = dataset.x_test[image]
    strip = np.stack([_mask_preview(x, target.mask), encoder_decode, *hmc_decodes])
    strip_png = grid_png(strip, image_shape, columns=len(strip), scale=3)
    grey = ", missing pixels grey" if target.mask is not None else ""
    st.image(strip_png, caption=f"Test image {image} ({MASK_LABELS[mask_kind]}{grey}); decoded at the encoder mean; "
             f"decoded at {len(hmc_decodes)} HMC samples.")
    download_png("Image and decodes (PNG)", strip_png, f"{checkpoint.name}-posterior-{image}.png", key="posterior_png")
with right:
    how = ("the model's trained step sizes and inflation" if chains.trained and scale == 1.0 else
           f"the model's trained step sizes ×{scale:g} and inflation" if chains.trained else
           f"default step sizes φ ~ U(0.02, 0.05) ×{scale:g}, no inflation (this model was trained without HMC)")
    st.markdown(f"**HMC**: {n_chains} chains × T = {n_transitions} transitions × LF = {chains.n_leapfrog} "
                f"leapfrog steps, with {how}.")
    metrics = st.columns(3)
    metrics[0].metric("Mean acceptance", f"{float(chains.result.acceptance_probs.mean()):.2f}")
    metrics[1].metric("Divergences", f"{chains.result.n_divergences()}")
    if grid is not None:
        metrics[2].metric("log p(x_O)", f"{grid.log_evidence:.2f}", help="Exact, by quadrature on a grid.")
    elif gaps is not None:
        metrics[2].metric(f"log p(x_O) ≈ {gaps.log_evidence_source}", f"{gaps.log_evidence:.2f}")

# -- the posterior and the chains ------------------------------------------------------------------------------
st.header("Posterior and chains")
if latent_dim == 2:
    view = coordinate_axes(2, 0, 1)
    view_note = "The latent plane itself."
else:
    views = ["dims", "pca"]
    url_widget_state("posterior_view", "view", "pca", valid=lambda v: v in views)
    view_cols = st.columns([2, 1, 1])
    view_labels = {"dims": "two latent dimensions", "pca": "top-2 principal axes of the HMC samples"}
    view_cols[0].radio("View", views, key="posterior_view", horizontal=True, format_func=view_labels.get)
    remember_in_url("posterior_view", "view")
    if st.session_state["posterior_view"] == "dims":
        for key, default in (("posterior_dim_x", 0), ("posterior_dim_y", 1)):
            if st.session_state.get(key, latent_dim) >= latent_dim:
                st.session_state[key] = default
        dim_x = view_cols[1].selectbox("Horizontal", range(latent_dim), key="posterior_dim_x",
                                       format_func=lambda d: f"z{d}")
        dim_y = view_cols[2].selectbox("Vertical", range(latent_dim), key="posterior_dim_y",
                                       format_func=lambda d: f"z{d}")
        view = coordinate_axes(latent_dim, dim_x, dim_y)
        view_note = f"The plane of z{dim_x} and z{dim_y} (other dimensions not shown, not fixed)."
    else:
        view, explained = principal_axes(samples)
        view_note = (f"The plane through the HMC samples' mean spanned by their top two principal axes "
                     f"({explained[0]:.0%} and {explained[1]:.0%} of their variance).")

plane_chain = view.project(chain)
encoder_2d = gaussian_in_view(view, encoder_mean, encoder_std)
proposal_2d = gaussian_in_view(view, encoder_mean, proposal_std) if not np.allclose(proposal_std, encoder_std) else None
best_2d = gaussian_in_view(view, gaps.best.mean.cpu().numpy(), gaps.best.std.cpu().numpy()) if gaps else None
ellipses = [g for g in (encoder_2d, proposal_2d, best_2d) if g is not None]
points = plane_chain
contours = None
if grid is not None:
    (low_1, high_1), (low_2, high_2) = grid.mass_limits()
    points = np.concatenate([plane_chain.reshape(-1, 2), [[low_1, low_2], [high_1, high_2]]])
limits = plane_limits(points, ellipses)
if grid is not None:
    contours = _display_density(ref, stamp, image, mask_spec, limits, grid.log_evidence)

url_widget_state("posterior_step", "t", n_transitions, parse=int,
                 valid=lambda t: isinstance(t, int) and 0 <= t <= n_transitions)
step = st.slider("Transition t (chain stepper)", 0, n_transitions, key="posterior_step",
                 help="t = 0: the draws from the initial proposal; t = T: the HMC samples.")
remember_in_url("posterior_step", "t")
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
st.header("Marginals")
exact = None
if grid is not None:
    marginal_1, marginal_2 = grid.marginals()
    exact = {0: (grid.z1, marginal_1), 1: (grid.z2, marginal_2)}
best = (gaps.best.mean.cpu().numpy(), gaps.best.std.cpu().numpy()) if gaps else None
st.plotly_chart(marginals_figure(samples, encoder_mean, encoder_std, range(latent_dim), exact=exact, best=best),
                key="posterior_marginals")
st.caption(f"Per dimension: the {n_chains} HMC samples (green histogram) against the encoder's Gaussian (orange)"
           + (" and the exact marginal (blue)" if exact else "") + (" and q* (dotted purple)" if best else "") + ".")
if latent_dim > 2:
    spread = np.maximum(samples.std(0), 1e-6 * encoder_std)  # all chains stuck: no spread at all
    shift = np.abs(samples.mean(0) - encoder_mean) / encoder_std + np.abs(np.log(spread / encoder_std))
    default_dims = [int(d) for d in np.argsort(-shift)[:4]]
    if "posterior_corner_dims" not in st.session_state or not all(
            d < latent_dim for d in st.session_state["posterior_corner_dims"]):
        st.session_state["posterior_corner_dims"] = sorted(default_dims)
    corner_dims = st.multiselect("Corner view of", list(range(latent_dim)), key="posterior_corner_dims",
                                 format_func=lambda d: f"z{d}", max_selections=5,
                                 help="By default the four dimensions where HMC moved furthest from the encoder.")
    if len(corner_dims) >= 2:
        st.plotly_chart(corner_figure(samples, encoder_mean, encoder_std, corner_dims), key="posterior_corner")
    else:
        st.info("Pick at least two dimensions for the corner view.")

# -- diagnostics ----------------------------------------------------------------------------------------------
st.header("Chain diagnostics")
diagnostics = _diagnostics(*args)
cols = st.columns(4)
cols[0].metric("Mean acceptance", f"{diagnostics.mean_acceptance.mean():.2f}", help="Optimal ≈ 0.65 (Neal 2011).")
cols[1].metric("Divergent transitions", f"{diagnostics.n_divergences} of {diagnostics.acceptance.size}")
cols[2].metric("Smallest bulk ESS", f"{diagnostics.ess.min():.0f} of {diagnostics.n_draws}")
cols[3].metric("Largest R-hat", f"{diagnostics.rhat.max():.3f}")
left, right = st.columns(2)
with left:
    st.plotly_chart(acceptance_figure(diagnostics.acceptance, diagnostics.divergences,
                                      title="Acceptance per transition"), key="posterior_acceptance")
with right:
    st.plotly_chart(step_size_heatmap(chains.step_sizes.cpu().numpy(), title="Step sizes φ (T × dim)"),
                    key="posterior_step_sizes")
st.plotly_chart(ess_rhat_figure(diagnostics.ess, diagnostics.rhat, diagnostics.n_draws,
                                title="Across chains (ArviZ)"), key="posterior_ess")
st.caption(f"ESS and R-hat of the states after transitions 1…{n_transitions} of all {n_chains} chains. The chains "
           "are short and start at the proposal, so R-hat well above 1 means they still remember where they "
           f"started. The HMC objective (eq. 5.9) at the final states: E log p(x_O, z_T) = "
           f"{diagnostics.mean_log_joint:.2f} nats.")
table = dimension_table(encoder_mean, encoder_std, samples, diagnostics.ess, diagnostics.rhat)
download_csv("Per-dimension summary (CSV)", csv_bytes(table), f"{checkpoint.name}-posterior-{image}-dims.csv",
             key="posterior_dims_csv")

# -- gaps -----------------------------------------------------------------------------------------------------
st.header("Posterior gaps")
st.toggle("Compute the gaps (best Gaussian q*, IWAE(K) for K up to 5000)", key="posterior_gaps_on",
          help="Takes a few seconds per image; cached for the same image, mask and seed.")
if st.session_state["posterior_gaps_on"]:
    st.query_params["gaps"] = "1"
else:
    st.query_params.pop("gaps", None)
if gaps is None and st.session_state["posterior_gaps_on"]:
    with st.status("Computing the gaps: the best Gaussian q*, then IWAE(K) up to K = 5000…", expanded=True) as status:
        status.write("q* by 300 Adam steps on this image's ELBO; 5000 importance weights under the encoder and "
                     "under a Gaussian fitted to the HMC samples.")
        _gaps(*args)
        status.update(label="Gaps computed", state="complete", expanded=False)
    st.session_state[GAPS_DONE_KEY].add(args)
    st.rerun()  # draw the plane and the marginals again, now with q*
if gaps is not None:
    cols = st.columns(4)
    cols[0].metric(f"log p(x_O), {gaps.log_evidence_source}", f"{gaps.log_evidence:.3f}")
    cols[1].metric("ELBO(q_φ), encoder", f"{gaps.elbo_encoder:.3f}")
    cols[2].metric("Amortisation gap", f"{gaps.amortisation_gap:.3f}", help="ELBO(q*) − ELBO(q_φ)")
    cols[3].metric("Approximation gap", f"{gaps.approximation_gap:.3f}", help="log p(x_O) − ELBO(q*)")
    left, right = st.columns([3, 2])
    with left:
        label = f"log p(x) by {gaps.log_evidence_source}" if gaps.log_evidence_source == "quadrature" else \
            f"log p(x) ≈ {gaps.log_evidence_source}"
        st.plotly_chart(iwae_curve_figure(gaps.ks, gaps.iwae, gaps.hmc_iwae, gaps.elbo_encoder, gaps.elbo_best,
                                          gaps.log_evidence, label, title="Bounds on log p(x_O)"),
                        key="posterior_iwae")
    with right:
        st.plotly_chart(gaps_figure(gaps.approximation_gap, gaps.amortisation_gap, title="Where the gap comes from"),
                        key="posterior_gap_bar")
        rows = {"log p(x_O) (" + gaps.log_evidence_source + ")": gaps.log_evidence, "ELBO(q*)": gaps.elbo_best,
                "ELBO(q_φ)": gaps.elbo_encoder, "amortisation gap": gaps.amortisation_gap,
                "approximation gap": gaps.approximation_gap, f"IWAE({gaps.ks[-1]})": gaps.iwae[-1]}
        if gaps.hmc_iwae is not None:
            rows[f"HMC-IS({gaps.ks[-1]})"] = gaps.hmc_iwae[-1]
        st.dataframe(gaps_table(rows), hide_index=True)
    ess_note = f"Kish ESS of the 5000 importance weights: encoder {gaps.iwae_ess:.0f}" + (
        f", HMC Gaussian {gaps.hmc_ess:.0f}" if gaps.hmc_ess is not None else "") + "."
    st.caption("IWAE(K) uses the encoder as proposal; IS(K) a full-covariance Gaussian fitted to the final HMC "
               "samples and widened ×1.25 — HMC's own q^(T) has no density to weight by, and the mean log joint "
               "of its samples is not a bound. Both are lower bounds in expectation; a single estimate at large K "
               "can land slightly above log p(x) when a few weights dominate. " + ess_note +
               " q* is the best diagonal Gaussian for this image alone (Adam on its ELBO from q_φ, fixed seed).")
    download_csv("Bounds (CSV)", csv_bytes(iwae_table(gaps.ks, gaps.iwae, gaps.hmc_iwae)),
                 f"{checkpoint.name}-posterior-{image}-bounds.csv", key="posterior_bounds_csv")
else:
    st.info("Switch on to find the best Gaussian q* for this image and the IWAE(K) curve up to K = 5000, and "
            "split log p(x_O) − ELBO(q_φ) into the approximation and the amortisation gap.")
