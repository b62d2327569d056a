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

import numpy as np
import streamlit as st
import torch

from pages._common import (
    checkpoint_stamp, current_ref, download_png, load_model, remember_in_url, require_model, run_through_entrypoint,
    shipped_models, url_widget_state,
)
from vizvae.checkpoint import checkpoint_dataset
from vizvae.data.batches import domain_labels, make_rule, sample_batches
from vizvae.errors import VizvaeError
from vizvae.evaluation.classifier import default_classifier_folder
from vizvae.inference.global_local import (
    BatchProblem, assign_clusters, batch_classification, batch_global_posteriors, cluster_purity, cluster_samples, decode_with_global,
    diagonal_path, global_local_grid, group_and_image_latents, interpolation_grid, nonlinear_posteriors,
    pca_posteriors, random_batch_centre, structured_batch_posteriors,
)
from vizvae.viz.global_local import batch_classification_table, cluster_label_figure, fd_table, posterior_map_figure
from vizvae.viz.images import grid_png
from vizvae.viz.latent import decode_mean

run_through_entrypoint()  # before anything is drawn: see its docstring

ML_VAE = "mnist-mlvae"  # shipped counterparts (vizvae/train/recipes.py)
BETA_VAE = "mnist-betavae-b10"
CLASSIFIER_NOTE = ("Features: the 128-unit penultimate layer of vizvae's own small digit classifier "
                   "(assets/models/mnist-digit-classifier, trained on the MNIST train split), **not Inception**: "
                   "the distances compare these models with each other, not with published FIDs.")


def _shipped_names() -> set[str]:
    return {info["name"] for info in shipped_models()}


# -- cached numbers ----------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=16)
def _assignments(ref: str, stamp: tuple):
    checkpoint = load_model(ref)
    return assign_clusters(checkpoint.model, checkpoint_dataset(checkpoint.config).x_test)


@st.cache_data(show_spinner=False, max_entries=16)
def _batch_centre(ref: str, stamp: tuple) -> torch.Tensor:
    checkpoint = load_model(ref)
    return random_batch_centre(checkpoint.model, checkpoint_dataset(checkpoint.config).x_test)


@st.cache_data(show_spinner="Drawing batches and their global posteriors…", max_entries=32)
def _batch_study(ref: str, stamp: tuple, kinds: tuple[str, ...], digit: int, digits: tuple[int, ...],
                 n_batches: int, batch_size: int, seed: int):
    checkpoint = load_model(ref)
    dataset = checkpoint_dataset(checkpoint.config)
    rules = [_rule(kind, digit, digits) for kind in kinds]
    test_domains = domain_labels(dataset, "test")
    shown = structured_batch_posteriors(checkpoint.model, dataset.x_test, dataset.y_test, rules, n_batches,
                                        batch_size, seed=seed, domains=test_domains)
    problems = [BatchProblem("selected", rules)]
    if "random" in kinds and len(kinds) >= 3:
        problems.insert(0, BatchProblem("without_random", [r for k, r in zip(kinds, rules) if k != "random"]))
    accuracies = batch_classification(
        checkpoint.model, (dataset.x_train, dataset.y_train), (dataset.x_test, dataset.y_test), problems,
        n_train_batches=n_batches, n_test_batches=n_batches, batch_size=batch_size, seed=seed,
        train_domains=domain_labels(dataset, "train"), test_domains=test_domains)
    return shown, batch_classification_table(accuracies, problems)


@st.cache_data(show_spinner="Scoring samples with the digit classifier…", max_entries=8)
def _fd_rows(names: tuple[str, ...], stamps: tuple, repetitions: int):
    from vizvae.evaluation.classifier import default_classifier_folder, load_classifier
    from vizvae.evaluation.fd import fd_repetitions

    classifier = load_classifier(default_classifier_folder())
    rows = []
    for (method, name) in names:
        checkpoint = load_model(name)
        real = checkpoint_dataset(checkpoint.config).x_test
        result = fd_repetitions(checkpoint.model, classifier, real, n=1000, repetitions=repetitions, seed=0)
        rows.append((method, name, result.mean, result.std, repetitions))
    return fd_table(rows)


def _rule(kind: str, digit: int, digits: tuple[int, ...]):
    if kind.startswith("domain:"):
        return make_rule("random", domain=kind.split(":", 1)[1])
    return make_rule(kind, digit=digit, digits=digits)


# -- the model ----------------------------------------------------------------------------------------------
checkpoint = require_model(kinds=("ugvae",), data_kinds=("image",), purpose="The global & local page")
ref = current_ref()
stamp = checkpoint_stamp(ref)
model = checkpoint.model
dataset = checkpoint_dataset(checkpoint.config)
image_shape = tuple(dataset.image_shape)
K, g, dz = model.clusters, model.global_dim, model.local_dim
label_names = [f"{c:g}" for c in dataset.target.categories] if dataset.target is not None else None
test_domains = domain_labels(dataset, "test")
domain_names = list(dataset.preprocessing.get("domains", []))
assignments = _assignments(ref, stamp)
cluster_sizes = np.bincount(assignments.assignment, minlength=K)

st.title("Global & local latent spaces")
st.caption(f"**{checkpoint.name}**: UG-VAE with local z ∈ R^{dz}, global β ∈ R^{g}, K = {K} clusters, trained on "
           f"random groups of {model.config.group_size} {dataset.name} images (no supervision). "
           "One group shares β; each image has its own cluster d and z.")

# -- 1. Fig. 4.4 ----------------------------------------------------------------------------------------------
st.header("Global rows, local columns")
controls = st.columns([2, 1, 1, 1, 2])
url_widget_state("gl_cluster", "cluster", 0, parse=int, valid=lambda d: isinstance(d, int) and 0 <= d < K)
with controls[0]:
    cluster = st.selectbox("Cluster d", list(range(K)), key="gl_cluster",
                           format_func=lambda d: f"d = {d} ({cluster_sizes[d]} test images)",
                           help="Which component of the local mixture p(z | d, β) the columns move in.")
url_widget_state("gl_steps", "steps", 7, parse=int, valid=lambda s: isinstance(s, int) and 3 <= s <= 11)
with controls[1]:
    steps = st.slider("Steps", 3, 11, key="gl_steps")
with controls[2]:
    beta_span = st.slider("β range ±", 0.5, 3.0, 1.0, step=0.5, key="gl_beta_span")
with controls[3]:
    z_span = st.slider("z range ±", 0.5, 5.0, 3.0, step=0.5, key="gl_z_span")
with controls[4]:
    mode = st.radio("Move", ["diagonal", "one dimension"], key="gl_mode", horizontal=True,
                    help="Diagonal: every dimension at once, as in the thesis. One dimension: only the chosen "
                    "β and z dimensions move; the others stay at the centre (β) or at μ_z^(d)(β) (z).")
for key, param in (("gl_cluster", "cluster"), ("gl_steps", "steps")):
    remember_in_url(key, param)
more = st.columns([2, 1, 1])
with more[0]:
    centre_choice = st.radio("Rows around", ["prior", "batches"], key="gl_centre", horizontal=True,
                             format_func={"prior": "β = 0, the prior mean (as the thesis)",
                                          "batches": "the posterior of random test batches"}.get)
beta_dim = z_dim = None
if mode == "one dimension":
    beta_dim = more[1].selectbox("β dimension", list(range(g)), key="gl_beta_dim", format_func=lambda j: f"β{j}")
    z_dim = more[2].selectbox("z dimension", list(range(dz)), key="gl_z_dim", format_func=lambda j: f"z{j}")
batch_centre = _batch_centre(ref, stamp)
centre = torch.zeros(g) if centre_choice == "prior" else batch_centre

grid = global_local_grid(model, cluster, centre + diagonal_path(steps, beta_span, g, beta_dim),
                         diagonal_path(steps, z_span, dz, z_dim))
grid_image = grid_png(decode_with_global(model, grid.z, grid.beta), image_shape)
shipped = _shipped_names()
left, middle, right = st.columns([5, 5, 4])
with left:
    with st.container(key="gl_grid"):
        st.image(grid_image, caption=f"UG-VAE, cluster d = {cluster}: rows β from −{beta_span:g} to +{beta_span:g}, "
                 f"columns z from μ_z^(d)(β) − {z_span:g} to + {z_span:g}")
    download_png("Grid (PNG)", grid_image, f"{checkpoint.name}-d{cluster}-grid.png", key="gl_grid_png")
    st.caption(f"Posteriors q(β | X) of random test batches sit around a point {float(batch_centre.norm()):.1f} from "
               f"β = 0 (prior draws have norm ≈ {g ** 0.5:.1f}); far apart, rows around 0 decode β the model "
               "rarely met in training.")
with middle:
    if ML_VAE in shipped:
        mlvae = load_model(ML_VAE).model
        ml_centre = torch.zeros(mlvae.global_dim) if centre_choice == "prior" else \
            _batch_centre(ML_VAE, checkpoint_stamp(ML_VAE))
        ml_rows = diagonal_path(steps, beta_span, mlvae.global_dim,
                                None if beta_dim is None else min(beta_dim, mlvae.global_dim - 1))
        ml_grid = global_local_grid(mlvae, 0, ml_centre + ml_rows, diagonal_path(
            steps, z_span, mlvae.local_dim, None if z_dim is None else min(z_dim, mlvae.local_dim - 1)))
        st.image(grid_png(decode_with_global(mlvae, ml_grid.z, ml_grid.beta), image_shape),
                 caption=f"ML-VAE ({ML_VAE}, K = 1, random groups): the same rows and columns; one unimodal p(z | β)")
    else:
        st.info(f"The ML-VAE counterpart is not built: `python -m vizvae rebuild --only {ML_VAE}`.")
with right:
    if BETA_VAE in shipped:
        beta_vae = load_model(BETA_VAE).model
        row = diagonal_path(steps, beta_span, beta_vae.latent_dim, None if z_dim is None else min(z_dim, beta_vae.latent_dim - 1))
        st.image(grid_png(decode_mean(beta_vae, row)[None], image_shape),
                 caption=f"β-VAE ({BETA_VAE}, β = 10): one row, z from −{beta_span:g} to +{beta_span:g} — no global "
                 "space, so content and style share one z (Fig. 4.5)")
    else:
        st.info(f"The β-VAE counterpart is not built: `python -m vizvae rebuild --only {BETA_VAE}`.")

# -- 2. clusters ------------------------------------------------------------------------------------------------
st.header("Clusters")
cols = st.columns([2, 1, 3])
beta_choices = ["zero", "prior", "batch"]
with cols[0]:
    beta_choice = st.radio("β", beta_choices, index=2, key="gl_cluster_beta", horizontal=True,
                           format_func={"zero": "β = 0 (prior mean)", "prior": "a draw from p(β)",
                                        "batch": "q(β | X) of a random test batch"}.get)
with cols[1]:
    seed = int(st.number_input("Seed", 0, 10_000, 0, key="gl_cluster_seed"))
rng = np.random.default_rng(seed)
if beta_choice == "zero":
    beta = torch.zeros(g)
elif beta_choice == "prior":
    beta = torch.as_tensor(rng.standard_normal(g), dtype=torch.float32)
else:
    rows = rng.choice(len(dataset.x_test), size=min(model.config.group_size, len(dataset.x_test)), replace=False)
    beta = batch_global_posteriors(model, dataset.x_test, rows[None]).mean[0]
per_cluster = cluster_samples(model, beta, n=8, seed=seed)  # (K, 8, dz)
samples_image = grid_png(decode_with_global(model, per_cluster, beta.expand(K, g)), image_shape)
left, right = st.columns([2, 3])
with left:
    st.image(samples_image, caption="One row per cluster d = 0 … K−1: the decoded prior mean μ_z^(d)(β) first, then "
             "seven draws of p(z | d, β), all with the same β")
with right:
    counts = assignments.label_counts(dataset.y_test, len(label_names) if label_names else 10)
    st.plotly_chart(cluster_label_figure(counts, label_names), key="gl_cluster_labels")
    note = f" ({' + '.join(domain_names)} test images)" if domain_names else ""
    st.caption(f"Each test image goes to argmax_d q(d | z) at its encoder mean{note}. Labels were never seen in "
               f"training; the majority label of a cluster accounts for {cluster_purity(counts):.0%} of the images.")

# -- 3. structured batches -----------------------------------------------------------------------------------
st.header("Structured batches")
kind_options = ["even", "odd", "fibonacci", "primes", "random", "digit", "hand-picked"] + \
    [f"domain:{name}" for name in domain_names]
kind_labels = {"even": "even digits", "odd": "odd digits", "fibonacci": "Fibonacci {0,1,2,3,5,8}",
               "primes": "primes {2,3,5,7}", "random": "random", "digit": "one digit",
               "hand-picked": "hand-picked digits", **{f"domain:{n}": f"only {n}" for n in domain_names}}
if "gl_batch_kinds" not in st.session_state:
    st.session_state["gl_batch_kinds"] = [f"domain:{n}" for n in domain_names] or ["even", "odd", "random"]
cols = st.columns([3, 1, 1, 1])
with cols[0]:
    kinds = st.multiselect("Batch kinds", kind_options, key="gl_batch_kinds", format_func=kind_labels.get,
                           help="Each kind is a rule for drawing a group of images; every batch gets its own "
                           "global posterior q(β | X).")
with cols[1]:
    digit = int(st.selectbox("One digit", list(range(10)), key="gl_batch_digit"))
with cols[2]:
    n_batches = st.slider("Batches per kind", 10, 100, 30, step=10, key="gl_batch_count")
with cols[3]:
    batch_size = st.select_slider("Batch size", [16, 32, 64, 128], value=128, key="gl_batch_size")
digits = tuple(st.multiselect("Hand-picked digits", list(range(10)), default=[0, 1], key="gl_batch_digits"))
projection = st.radio("Projection", ["pca", "tsne", "umap"], key="gl_projection", horizontal=True,
                      format_func={"pca": "PCA (with uncertainty)", "tsne": "t-SNE", "umap": "UMAP"}.get)
if len(kinds) < 2:
    st.info("Choose at least two batch kinds to compare.")
else:
    try:
        shown, table = _batch_study(ref, stamp, tuple(kinds), digit, digits or (0,), n_batches, int(batch_size), 0)
    except VizvaeError as err:
        st.warning(f"{err}. Choose a smaller batch size or another rule.")
    else:
        names = [rule.label for rule in shown.rules]
        if projection == "pca":
            projected = pca_posteriors(shown.mean, shown.std)
            ratio = projected.explained_variance_ratio
            axes = (f"PC1 ({ratio[0]:.0%} of variance)", f"PC2 ({ratio[1]:.0%})")
        else:
            with st.spinner("Projecting the posterior means…"):
                projected = nonlinear_posteriors(shown.mean, projection)
            axes = (f"{projection} 1", f"{projection} 2")
        left, right = st.columns([3, 2])
        with left:
            st.plotly_chart(posterior_map_figure(projected.coords, shown.kinds, names, projected.covariances,
                                                 axis_titles=axes), key="gl_posterior_map")
            st.caption(f"{n_batches} held-out test batches of {batch_size} per kind; each point is the mean of "
                       "q(β | X) (eq. 4.9)" + (", each ellipse its 2σ contour projected exactly onto the two "
                                               "principal axes." if projected.covariances is not None else "."))
        with right:
            st.dataframe(table, hide_index=True, key="gl_svm_table", column_config={
                "Batch categories": st.column_config.TextColumn(width="medium"),
                **{name: st.column_config.NumberColumn(width="small") for name in ("Train accuracy", "Test accuracy")},
            })
            st.caption(f"As Table 4.2: SVMs fitted on 5 samples of β from each of {n_batches} batches per kind drawn "
                       "from the train split, tested on batches from the held-out test split. Kinds: "
                       + "; ".join(f"({i}) {name}" for i, name in enumerate(names)) + ".")

# -- 4. interpolation ----------------------------------------------------------------------------------------------
st.header("Interpolating groups and images")
group_options = [k for k in kind_options if k not in ("hand-picked",)]
defaults = ([f"domain:{n}" for n in domain_names[:2]] if len(domain_names) >= 2 else ["even", "odd"])
cols = st.columns(3)
with cols[0]:
    group_a = st.selectbox("Group 1", group_options, index=group_options.index(defaults[0]), key="gl_group_a",
                           format_func=kind_labels.get)
with cols[1]:
    group_b = st.selectbox("Group 2", group_options, index=group_options.index(defaults[1]), key="gl_group_b",
                           format_func=kind_labels.get)
with cols[2]:
    interp_steps = st.slider("Steps", 3, 11, 7, key="gl_interp_steps")
try:
    rng = np.random.default_rng(1)
    size = min(model.config.group_size, 64)
    rows_a = sample_batches(dataset.y_test, _rule(group_a, digit, digits or (0,)), 1, size, rng, test_domains)[0]
    rows_b = sample_batches(dataset.y_test, _rule(group_b, digit, digits or (0,)), 1, size, rng, test_domains)[0]
except VizvaeError as err:
    st.warning(str(err))
else:
    beta_a, z_a = group_and_image_latents(model, dataset.x_test, rows_a, rows_a[0])
    beta_b, z_b = group_and_image_latents(model, dataset.x_test, rows_b, rows_b[0])
    path = interpolation_grid(model, beta_a, beta_b, z_a, z_b, interp_steps)
    interp_image = grid_png(decode_with_global(model, path.z, path.beta), image_shape)
    left, right = st.columns([1, 4])
    with left:
        st.image(grid_png(dataset.x_test[[rows_a[0], rows_b[0]]], image_shape, columns=1, scale=3),
                 caption=f"image 1 (test row {rows_a[0]}) above image 2 (test row {rows_b[0]})")
    with right:
        st.image(interp_image, caption=f"Rows: β from group 1 ({kind_labels[group_a]}, {size} test images) to group 2 "
                 f"({kind_labels[group_b]}); columns: z from image 1 to image 2 (Fig. 4.7)")
        download_png("Interpolation (PNG)", interp_image, f"{checkpoint.name}-interpolation.png", key="gl_interp_png")

# -- 5. sample quality ----------------------------------------------------------------------------------------------
st.header("Sample quality")
candidates = [("UG-VAE", current_ref()), ("ML-VAE", ML_VAE), ("β-VAE (β = 10)", BETA_VAE)]
available = tuple((method, name) for method, name in candidates if name == current_ref() or name in shipped)
if not (default_classifier_folder() / "model.safetensors").is_file():
    st.info("The digit classifier behind the Fréchet distance is not built: "
            "`python -m vizvae rebuild --only mnist-digit-classifier`.")
elif tuple(image_shape) != (1, 28, 28):
    st.info("The Fréchet distance here scores 28×28 digit images.")
else:
    cols = st.columns([1, 3])
    with cols[0]:
        reps = st.slider("Repetitions", 1, 9, 3, key="gl_fd_reps")
    with cols[1]:
        st.button("Compute the Fréchet distances", key="gl_fd_compute", icon=":material/calculate:",
                  on_click=lambda: st.session_state.update(gl_fd_shown=True),
                  help="Generates 1,000 images per model and repetition and scores them (seconds on a CPU); "
                  "the result is kept for this server process.")
    description = ("Fréchet distance between 1,000 generated images (decoder means of prior samples; UG-VAE groups "
                   f"of {model.config.group_size} share one β ~ N(0, I)) and the 1,000 test images; lower is better, "
                   "mean ± std over repetitions (Table 4.1). " + CLASSIFIER_NOTE +
                   " CLI: `python -m vizvae evaluate MODEL --task fd --json`.")
    if st.session_state.get("gl_fd_shown"):
        fd = _fd_rows(available, tuple(checkpoint_stamp(name) for _, name in available), reps)
        st.dataframe(fd, hide_index=True, key="gl_fd_table")
    st.caption(description)
