"""Global & local: a UG-VAE's two latent spaces (thesis Ch. 4).

1. the Fig. 4.4 grid for one cluster d (rows move β, columns move z around μ_z^(d)(β)), with
   the ML-VAE and β-VAE counterparts (Fig. 4.4 right, Fig. 4.5);
2. clusters: samples of every cluster for one β, and where q(d | z) sends the test set;
3. structured batches: the global posterior q(β | X) of batches built by a rule, in 2-D with
   its uncertainty, and SVMs on β samples (Table 4.2);
4. interpolation between two groups' β and two images' z (Fig. 4.7a/c);
5. sample quality: Fréchet distances on vizvae's own digit-classifier features (Table 4.1).

Widget / session-state keys (used by the tests): ``gl_cluster``, ``gl_steps``, ``gl_beta_span``,
``gl_z_span``, ``gl_mode``, ``gl_centre``, ``gl_beta_dim``, ``gl_z_dim``, ``gl_cluster_beta``, ``gl_cluster_seed``,
``gl_batch_kinds``, ``gl_batch_digit``, ``gl_batch_digits``, ``gl_batch_count``, ``gl_batch_size``,
``gl_projection``, ``gl_group_a``, ``gl_group_b``, ``gl_interp_steps``, ``gl_fd_reps``, ``gl_fd_compute``
(the button) and ``gl_fd_shown`` (whether the Fréchet table is drawn).
Containers: ``gl_grid`` (the UG-VAE grid image). URL: ``cluster``, ``steps``.
"""

from __future__ import annotations

if __name__ == "__main__":  # a fresh server's first request for /global_local runs this file bare
    from pages._common import run_app

    run_app()  # before the imports below: the app's navigation must replace Streamlit's at once

from dataclasses import dataclass
from typing import Any

import streamlit as st
import torch

from pages._common import (
    plain, checkpoint_stamp, current_ref, download_png, load_model, require_model, shipped_models, url_bound,
)
from vizvae.checkpoint import checkpoint_dataset, read_config
from vizvae.data.batches import domain_labels
from vizvae.errors import VizvaeError
from vizvae.evaluation.classifier import default_classifier_folder
from vizvae.inference.global_local import (
    assign_clusters, cluster_purity, cluster_samples, decode_with_global, diagonal_path, nonlinear_posteriors,
    pca_posteriors,
)
from vizvae.inference.global_local_store import (
    batch_rule, cached_batch_centre, cached_batch_study, default_batch_kinds, grid_decoded, stored_grid,
)
from vizvae.inference.global_local_view import (
    CLUSTER_BETAS, cluster_beta, cluster_sizes, group_interpolation, interpolation_groups, shared_dimension,
)
from vizvae.inference.latent import decode_mean
from vizvae.viz.global_local import batch_classification_table, cluster_label_figure, fd_table, posterior_map_figure
from vizvae.viz.images import grid_png

ML_VAE = "mnist-mlvae"  # shipped counterparts (vizvae/train/recipes.py)
BETA_VAE = "mnist-betavae-b10"
CLASSIFIER_NOTE = ("Features: the 128-unit penultimate layer of vizvae's own small digit classifier "
                   "(assets/models/mnist-digit-classifier, trained on the MNIST train split), **not Inception**: "
                   "the distances compare these models with each other, not with published FIDs.")
KIND_LABELS = {"even": "even digits", "odd": "odd digits", "fibonacci": "Fibonacci {0,1,2,3,5,8}",
               "primes": "primes {2,3,5,7}", "random": "random", "digit": "one digit", "hand-picked": "hand-picked digits"}


@dataclass(frozen=True)
class Subject:
    """The UG-VAE every section draws from, with its test set."""

    ref: str
    stamp: tuple
    name: str
    model: Any
    dataset: Any
    image_shape: tuple[int, ...]
    domains: list[str]  # the data set's domains (e.g. mnist, digits), or none

    @property
    def kind_labels(self) -> dict[str, str]:
        return {**KIND_LABELS, **{f"domain:{n}": f"only {n}" for n in self.domains}}

    @property
    def kinds(self) -> list[str]:
        return list(KIND_LABELS) + [f"domain:{name}" for name in self.domains]


@dataclass(frozen=True)
class GridView:
    """How the Fig. 4.4 grids move: rows along β, columns along z."""

    cluster: int
    steps: int
    beta_span: float
    z_span: float
    around_prior: bool
    beta_dim: int | None  # None: every dimension at once (the diagonal)
    z_dim: int | None


# -- cached numbers ----------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=16)
def _assignments(ref: str, stamp: tuple):
    checkpoint = load_model(ref)
    return assign_clusters(checkpoint.model, checkpoint_dataset(checkpoint.config).x_test)


@st.cache_data(show_spinner=False, max_entries=16)
def _batch_centre(ref: str, stamp: tuple) -> torch.Tensor:
    checkpoint = load_model(ref)
    return cached_batch_centre(checkpoint.path, checkpoint.model, checkpoint_dataset(checkpoint.config).x_test)


@st.cache_data(show_spinner="Drawing batches and their global posteriors…", max_entries=32)
def _batch_study(ref: str, stamp: tuple, kinds: tuple[str, ...], digit: int, digits: tuple[int, ...],
                 n_batches: int, batch_size: int, seed: int):
    """The default kinds' study is shipped with the model (``python -m vizvae precompute``); any other is
    computed once and kept in the checkpoint cache."""
    checkpoint = load_model(ref)
    study, _ = cached_batch_study(checkpoint.path, checkpoint.model, checkpoint_dataset(checkpoint.config), kinds,
                                  digit, digits, n_batches, batch_size, seed)
    return study.shown, batch_classification_table(study.accuracies, study.problems)


@st.cache_data(show_spinner="Scoring samples with the digit classifier…", max_entries=8)
def _fd_rows(names: tuple[str, ...], stamps: tuple, repetitions: int):
    """Shipped models' distances come with them (``python -m vizvae precompute``); others are
    computed once and kept in the checkpoint cache."""
    from vizvae.evaluation.fd import cached_fd

    rows = []
    for (method, name) in names:
        checkpoint = load_model(name)
        real = checkpoint_dataset(checkpoint.config).x_test
        result = cached_fd(checkpoint.path, checkpoint.model, default_classifier_folder(), real, n=1000,
                           repetitions=repetitions, seed=0)
        rows.append((method, name, result.mean, result.std, repetitions))
    return fd_table(rows)


def _rule(kind: str, digit: int, digits: tuple[int, ...]):
    return batch_rule(kind, digit, digits)


def _shipped_names() -> set[str]:
    return {info["name"] for info in shipped_models()}


# -- the page -----------------------------------------------------------------------------------------------
def render() -> None:
    checkpoint = require_model(kinds=("ugvae",), data_kinds=("image",), purpose="The global & local page")
    ref = current_ref()
    dataset = checkpoint_dataset(checkpoint.config)
    subject = Subject(ref, checkpoint_stamp(ref), checkpoint.name, checkpoint.model, dataset,
                      tuple(dataset.image_shape), list(dataset.preprocessing.get("domains", [])))
    model = subject.model
    st.title("Global & local latent spaces")
    st.caption(f"**{plain(subject.name)}**: UG-VAE with local z ∈ R^{model.local_dim}, global β ∈ R^{model.global_dim}, "
               f"K = {model.clusters} clusters, trained on random groups of {model.config.group_size} {dataset.name} "
               "images (no supervision). One group shares β; each image has its own cluster d and z.")
    shipped = _shipped_names()
    grid_section(subject, shipped)
    clusters_section(subject)
    digit, digits = batches_section(subject)
    interpolation_section(subject, digit, digits)
    sample_quality_section(subject, shipped)


def grid_section(subject: Subject, shipped: set[str]) -> None:
    """Fig. 4.4: the UG-VAE grid for one cluster, with its ML-VAE and β-VAE counterparts."""
    st.header("Global rows, local columns")
    view = grid_controls(subject)
    batch_centre = _batch_centre(subject.ref, subject.stamp)
    left, middle, right = st.columns([5, 5, 4])
    with left:
        ugvae_grid(subject, view, batch_centre)
    with middle:
        if _counterpart(ML_VAE, "ML-VAE", shipped, subject.image_shape):
            mlvae_grid(load_model(ML_VAE).model, view, subject.image_shape)
    with right:
        if _counterpart(BETA_VAE, "β-VAE", shipped, subject.image_shape):
            beta_vae = load_model(BETA_VAE).model
            row = diagonal_path(view.steps, view.beta_span, beta_vae.latent_dim,
                                shared_dimension(view.z_dim, beta_vae.latent_dim))
            st.image(grid_png(decode_mean(beta_vae, row)[None], subject.image_shape),
                     caption=f"β-VAE ({BETA_VAE}, β = 10): one row, z from −{view.beta_span:g} to +{view.beta_span:g} "
                     "— no global space, so content and style share one z (Fig. 4.5)")


def _counterpart(name: str, family: str, shipped: set[str], image_shape: tuple[int, ...]) -> bool:
    """Whether the shipped counterpart ``name`` can be drawn beside this model (built, and of images of the
    same shape); if not, says why."""
    if name not in shipped:
        st.info(f"The {family} counterpart is not built: `python -m vizvae rebuild --only {name}`.")
        return False
    folder = next(info["path"] for info in shipped_models() if info["name"] == name)
    dataset = read_config(folder, check_model=False).get("dataset") or {}  # (its config only: no weights loaded)
    if tuple(dataset.get("image_shape") or ()) != tuple(image_shape):
        st.info(f"The {family} counterpart ({name}) models {dataset.get('name', 'other')} images, not these.")
        return False
    return True


def grid_controls(subject: Subject) -> GridView:
    model = subject.model
    sizes = cluster_sizes(_assignments(subject.ref, subject.stamp).assignment, model.clusters)
    controls = st.columns([2, 1, 1, 1, 2])
    with controls[0]:
        cluster = url_bound(st.selectbox, "Cluster d", key="gl_cluster", param="cluster", default=0, parse=int,
                            valid=lambda d: isinstance(d, int) and 0 <= d < model.clusters,
                            options=list(range(model.clusters)), format_func=lambda d: f"d = {d} ({sizes[d]} test images)",
                            help="Which component of the local mixture p(z | d, β) the columns move in.")
    with controls[1]:
        steps = url_bound(st.slider, "Steps", key="gl_steps", param="steps", default=7, parse=int,
                          valid=lambda s: isinstance(s, int) and 3 <= s <= 11, min_value=3, max_value=11)
    with controls[2]:
        beta_span = st.slider("β range ±", 0.5, 3.0, 1.0, step=0.5, key="gl_beta_span")
    with controls[3]:
        z_span = st.slider("z range ±", 0.5, 5.0, 3.0, step=0.5, key="gl_z_span")
    with controls[4]:
        mode = st.radio("Move", ["diagonal", "one dimension"], key="gl_mode", horizontal=True,
                        help="Diagonal: every dimension at once, as in the thesis. One dimension: only the chosen "
                        "β and z dimensions move; the others stay at the centre (β) or at μ_z^(d)(β) (z).")
    more = st.columns([2, 1, 1])
    with more[0]:
        centre = st.radio("Rows around", ["prior", "batches"], key="gl_centre", horizontal=True,
                          format_func={"prior": "β = 0, the prior mean (as the thesis)",
                                       "batches": "the posterior of random test batches"}.get)
    beta_dim = z_dim = None
    if mode == "one dimension":
        beta_dim = more[1].selectbox("β dimension", list(range(model.global_dim)), key="gl_beta_dim",
                                     format_func=lambda j: f"β{j}")
        z_dim = more[2].selectbox("z dimension", list(range(model.local_dim)), key="gl_z_dim", format_func=lambda j: f"z{j}")
    return GridView(cluster, steps, beta_span, z_span, centre == "prior", beta_dim, z_dim)


def ugvae_grid(subject: Subject, view: GridView, batch_centre: torch.Tensor) -> None:
    g = subject.model.global_dim
    image = grid_png(_grid_decoded(subject.ref, view, view.cluster, batch_centre, view.beta_dim, view.z_dim),
                     subject.image_shape)
    with st.container(key="gl_grid"):
        st.image(image, caption=f"UG-VAE, cluster d = {view.cluster}: rows β from −{view.beta_span:g} to "
                 f"+{view.beta_span:g}, columns z from μ_z^(d)(β) − {view.z_span:g} to + {view.z_span:g}")
    download_png("Grid (PNG)", image, f"{subject.name}-d{view.cluster}-grid.png", key="gl_grid_png")
    st.caption(f"Posteriors q(β | X) of random test batches sit around a point {float(batch_centre.norm()):.1f} from "
               f"β = 0 (prior draws have norm ≈ {g ** 0.5:.1f}); far apart, rows around 0 decode β the model "
               "rarely met in training.")


def _grid_decoded(ref: str, view: GridView, cluster: int, batch_centre: torch.Tensor | None, beta_dim: int | None,
                  z_dim: int | None):
    """Fig. 4.4's decoder means for model ``ref``: the first view's are shipped with the model, any other
    view's are one batched decode."""
    checkpoint = load_model(ref)
    stored = stored_grid(checkpoint.path, cluster, view.steps, view.beta_span, view.z_span, view.around_prior,
                         beta_dim, z_dim)
    if stored is not None:
        return stored
    return grid_decoded(checkpoint.model, cluster, view.steps, view.beta_span, view.z_span,
                        None if view.around_prior else batch_centre, beta_dim, z_dim)


def mlvae_grid(mlvae: Any, view: GridView, image_shape: tuple[int, ...]) -> None:
    centre = None if view.around_prior else _batch_centre(ML_VAE, checkpoint_stamp(ML_VAE))
    decoded = _grid_decoded(ML_VAE, view, 0, centre, shared_dimension(view.beta_dim, mlvae.global_dim),
                            shared_dimension(view.z_dim, mlvae.local_dim))
    st.image(grid_png(decoded, image_shape),
             caption=f"ML-VAE ({ML_VAE}, K = 1, random groups): the same rows and columns; one unimodal p(z | β)")


def clusters_section(subject: Subject) -> None:
    st.header("Clusters")
    model, dataset = subject.model, subject.dataset
    cols = st.columns([2, 1, 3])
    with cols[0]:
        choice = st.radio("β", CLUSTER_BETAS, index=2, key="gl_cluster_beta", horizontal=True,
                          format_func={"zero": "β = 0 (prior mean)", "prior": "a draw from p(β)",
                                       "batch": "q(β | X) of a random test batch"}.get)
    with cols[1]:
        seed = int(st.number_input("Seed", 0, 10_000, 0, key="gl_cluster_seed"))
    beta = cluster_beta(model, dataset.x_test, choice, seed)
    per_cluster = cluster_samples(model, beta, n=8, seed=seed)  # (K, 8, dz)
    samples = grid_png(decode_with_global(model, per_cluster, beta.expand(model.clusters, model.global_dim)),
                       subject.image_shape)
    left, right = st.columns([2, 3])
    with left:
        st.image(samples, caption="One row per cluster d = 0 … K−1: the decoded prior mean μ_z^(d)(β) first, then "
                 "seven draws of p(z | d, β), all with the same β")
    with right:
        label_names = [f"{c:g}" for c in dataset.target.categories] if dataset.target is not None else None
        counts = _assignments(subject.ref, subject.stamp).label_counts(dataset.y_test,
                                                                       len(label_names) if label_names else 10)
        st.plotly_chart(cluster_label_figure(counts, label_names), key="gl_cluster_labels")
        note = f" ({' + '.join(subject.domains)} test images)" if subject.domains else ""
        st.caption(f"Each test image goes to argmax_d q(d | z) at its encoder mean{note}. Labels were never seen in "
                   f"training; the majority label of a cluster accounts for {cluster_purity(counts):.0%} of the images.")


def batches_section(subject: Subject) -> tuple[int, tuple[int, ...]]:
    """Table 4.2 and the map of q(β | X); returns the digit rules' choices, which the interpolation shares."""
    st.header("Structured batches")
    if "gl_batch_kinds" not in st.session_state:
        st.session_state["gl_batch_kinds"] = default_batch_kinds(subject.domains)
    cols = st.columns([3, 1, 1, 1])
    with cols[0]:
        kinds = st.multiselect("Batch kinds", subject.kinds, key="gl_batch_kinds", format_func=subject.kind_labels.get,
                               help="Each kind is a rule for drawing a group of images; every batch gets its own "
                               "global posterior q(β | X).")
    with cols[1]:
        digit = int(st.selectbox("One digit", list(range(10)), key="gl_batch_digit"))
    with cols[2]:
        n_batches = st.slider("Batches per kind", 10, 100, 30, step=10, key="gl_batch_count")
    with cols[3]:
        batch_size = int(st.select_slider("Batch size", [16, 32, 64, 128], value=128, key="gl_batch_size"))
    digits = tuple(st.multiselect("Hand-picked digits", list(range(10)), default=[0, 1], key="gl_batch_digits")) or (0,)
    projection = st.radio("Projection", ["pca", "tsne", "umap"], key="gl_projection", horizontal=True,
                          format_func={"pca": "PCA (with uncertainty)", "tsne": "t-SNE", "umap": "UMAP"}.get)
    if len(kinds) < 2:
        st.info("Choose at least two batch kinds to compare.")
        return digit, digits
    try:
        shown, table = _batch_study(subject.ref, subject.stamp, tuple(kinds), digit, digits, n_batches, batch_size, 0)
    except VizvaeError as err:
        st.warning(f"{err}. Choose a smaller batch size or another rule.")
        return digit, digits
    posterior_map(shown, projection, f"{n_batches} held-out test batches of {batch_size} per kind")
    # under the map at full width: in a column beside it the Test accuracy column was cut off
    st.dataframe(table, hide_index=True, key="gl_svm_table", width="stretch")
    st.caption(f"As Table 4.2: SVMs fitted on 5 samples of β from each of {n_batches} batches per kind drawn "
               "from the train split, tested on batches from the held-out test split. Kinds: "
               + "; ".join(f"({i}) {rule.label}" for i, rule in enumerate(shown.rules)) + ".")
    return digit, digits


def posterior_map(shown: Any, projection: str, batches: str) -> None:
    """The batches' posterior means in 2-D: PCA with each 2σ ellipse, or t-SNE / UMAP."""
    if projection == "pca":
        projected = pca_posteriors(shown.mean, shown.std)
        ratio = projected.explained_variance_ratio
        axes = (f"PC1 ({ratio[0]:.0%} of variance)", f"PC2 ({ratio[1]:.0%})")
    else:
        with st.spinner("Projecting the posterior means…"):
            projected = nonlinear_posteriors(shown.mean, projection)
        axes = (f"{projection} 1", f"{projection} 2")
    names = [rule.label for rule in shown.rules]
    st.plotly_chart(posterior_map_figure(projected.coords, shown.kinds, names, projected.covariances, axis_titles=axes),
                    key="gl_posterior_map")
    st.caption(f"{batches}; each point is the mean of q(β | X) (eq. 4.9)" + (
        ", each ellipse its 2σ contour projected exactly onto the two principal axes."
        if projected.covariances is not None else "."))


def interpolation_section(subject: Subject, digit: int, digits: tuple[int, ...]) -> None:
    st.header("Interpolating groups and images")
    model, dataset, labels = subject.model, subject.dataset, subject.kind_labels
    options = [kind for kind in subject.kinds if kind != "hand-picked"]
    defaults = [f"domain:{n}" for n in subject.domains[:2]] if len(subject.domains) >= 2 else ["even", "odd"]
    cols = st.columns(3)
    with cols[0]:
        group_a = st.selectbox("Group 1", options, index=options.index(defaults[0]), key="gl_group_a",
                               format_func=labels.get)
    with cols[1]:
        group_b = st.selectbox("Group 2", options, index=options.index(defaults[1]), key="gl_group_b",
                               format_func=labels.get)
    with cols[2]:
        steps = st.slider("Steps", 3, 11, 7, key="gl_interp_steps")
    size = min(model.config.group_size, 64)
    try:
        rows_a, rows_b = interpolation_groups(dataset.y_test, (_rule(group_a, digit, digits), _rule(group_b, digit, digits)),
                                              size, domain_labels(dataset, "test"))
    except VizvaeError as err:
        st.warning(str(err))
        return
    path = group_interpolation(model, dataset.x_test, rows_a, rows_b, steps)
    image = grid_png(decode_with_global(model, path.z, path.beta), subject.image_shape)
    left, right = st.columns([1, 4])
    with left:
        st.image(grid_png(dataset.x_test[[rows_a[0], rows_b[0]]], subject.image_shape, columns=1, scale=3),
                 caption=f"image 1 (test row {rows_a[0]}) above image 2 (test row {rows_b[0]})")
    with right:
        st.image(image, caption=f"Rows: β from group 1 ({labels[group_a]}, {size} test images) to group 2 "
                 f"({labels[group_b]}); columns: z from image 1 to image 2 (Fig. 4.7)")
        download_png("Interpolation (PNG)", image, f"{subject.name}-interpolation.png", key="gl_interp_png")


def sample_quality_section(subject: Subject, shipped: set[str]) -> None:
    """Table 4.1: Fréchet distances of the UG-VAE and its counterparts, on request."""
    st.header("Sample quality")
    candidates = [("UG-VAE", subject.ref), ("ML-VAE", ML_VAE), ("β-VAE (β = 10)", BETA_VAE)]
    available = tuple((method, name) for method, name in candidates if name == subject.ref or name in shipped)
    if not (default_classifier_folder() / "model.safetensors").is_file():
        st.info("The digit classifier behind the Fréchet distance is not built: "
                "`python -m vizvae rebuild --only mnist-digit-classifier`.")
        return
    if subject.image_shape != (1, 28, 28):
        st.info("The Fréchet distance here scores 28×28 digit images.")
        return
    cols = st.columns([1, 3])
    with cols[0]:
        repetitions = st.slider("Repetitions", 1, 9, 3, key="gl_fd_reps")
    with cols[1]:
        st.button("Compute the Fréchet distances", key="gl_fd_compute", icon=":material/calculate:",
                  on_click=lambda: st.session_state.update(gl_fd_shown=True),
                  help="Generates 1,000 images per model and repetition and scores them (seconds on a CPU); "
                  "the result is kept for this server process.")
    if st.session_state.get("gl_fd_shown"):
        fd = _fd_rows(available, tuple(checkpoint_stamp(name) for _, name in available), repetitions)
        st.dataframe(fd, hide_index=True, key="gl_fd_table")
    st.caption("Fréchet distance between 1,000 generated images (decoder means of prior samples; UG-VAE groups "
               f"of {subject.model.config.group_size} share one β ~ N(0, I)) and the 1,000 test images; lower is "
               "better, mean ± std over repetitions (Table 4.1). " + CLASSIFIER_NOTE +
               " CLI: `python -m vizvae evaluate MODEL --task fd --json`.")

