"""Model card: what the selected model is, how it was trained, how well it does, and what it
draws (prior samples) and reconstructs (test images).

Widget keys (used by the tests): ``model_seed``; charts and downloads ``model_training_curves``,
``model_history_csv``, ``model_prior_png``, ``model_reconstructions_png``.
"""

from __future__ import annotations

if __name__ == "__main__":  # a fresh server's first request for /model runs this file bare
    from pages._common import run_app

    run_app()  # before the imports below: the app's navigation must replace Streamlit's at once

from pathlib import Path
from typing import Any

import streamlit as st

from pages._common import checkpoint_stamp, current_ref, download_csv, download_png, load_model, paths_open, plain, shown_error
from vizvae.checkpoint import checkpoint_dataset, read_config
from vizvae.errors import VizvaeError
from vizvae.train.cards import (
    PRIOR_SAMPLES, RECONSTRUCTIONS_PER_CLASS, prior_preview, rebuild_command, reconstruction_preview, stored_previews,
)
from vizvae.viz.svg import training_curves_svg
from vizvae.viz.tables import column_rows, csv_bytes, evaluation_caption, evaluation_rows, history_rows, markdown_table

# The card reads config.json and the stored seed-0 grids: it needs no weights (and no torch) until
# the user asks for another seed, and no pandas (its tables are markdown, its CSV plain rows), so the
# app's first page renders fast.


@st.cache_data(show_spinner=False, max_entries=32)
def _prior_png(ref: str, stamp: tuple, seed: int, image_shape: tuple[int, ...]) -> bytes:
    stored = stored_previews(stamp[0], read_config(stamp[0], check_model=False)) if seed == 0 else None
    return stored[0] if stored else prior_preview(load_model(ref).model, image_shape, seed=seed)


@st.cache_data(show_spinner=False, max_entries=32)
def _reconstruction_png(ref: str, stamp: tuple, seed: int) -> tuple[bytes, list[int]]:
    stored = stored_previews(stamp[0], read_config(stamp[0], check_model=False)) if seed == 0 else None
    if stored:
        return stored[1], stored[2]
    checkpoint = load_model(ref)
    return reconstruction_preview(checkpoint.model, checkpoint_dataset(checkpoint.config), seed=seed)


def render() -> None:
    ref = current_ref()
    if ref is None:
        st.info("Pick or open a model in the sidebar.")
        return
    stamp = checkpoint_stamp(ref)
    try:
        config = read_config(stamp[0], check_model=False)
    except VizvaeError as err:
        st.error(plain(shown_error(err, ref)), icon=":material/error:")
        return
    name = config.get("name", ref)
    architecture = config.get("architecture") or load_model(ref).model.describe()
    dataset_info = config.get("dataset") or {}
    headline(config, name, stamp[0], architecture)
    left, right = st.columns(2)
    with left:
        architecture_section(config.get("config", {}), architecture)
    with right:
        dataset_section(dataset_info)
    training_section(config.get("training") or {}, name, rebuild_command(Path(stamp[0]), config))
    evaluation_section(config.get("evaluation") or {},
                       "feature" if (config.get("config") or {}).get("column_kinds") else "pixel")
    model_config = config.get("config") or {}
    if model_config.get("column_kinds"):  # a mixed-type table model: its columns instead of image grids
        columns_section(model_config, dataset_info)
    elif dataset_info.get("kind", "image") != "image" or not dataset_info.get("image_shape"):
        st.info("Image grids are drawn for image models only.")
    else:
        image_sections(ref, stamp, name, tuple(dataset_info["image_shape"]))


def headline(config: dict[str, Any], name: str, folder: str, architecture: dict[str, Any]) -> None:
    st.title(plain(name))
    where = f" · {folder}" if paths_open() else ""  # a closed server shows no server path
    st.caption(plain(f"{config.get('model_class', config['model'])}{where}"))
    metrics = st.columns(4)
    metrics[0].metric("parameters", f"{architecture['parameters']:,}")
    metrics[1].metric("latent dimensions", " + ".join(str(d) for d in architecture["latent_dims"]))
    metrics[2].metric("β (KL weight)", f"{config.get('config', {}).get('beta', 1.0):g}")
    evaluation = config.get("evaluation") or {}
    if "test_elbo" in evaluation:
        metrics[3].metric("test ELBO (nats)", f"{evaluation['test_elbo']:.2f}")


def architecture_section(model_args: dict[str, Any], architecture: dict[str, Any]) -> None:
    st.subheader("Architecture")
    dependency = model_args.get("dependency")  # mixed-type models: the dependency model on the marginal codes
    network = dependency or model_args
    st.markdown(
        (f"- **{len(model_args['column_kinds'])} marginal VAEs** (1-D latent, {model_args.get('marginal_hidden')} "
         "hidden units), one per column\n- dependency model on their codes: " if dependency else "- ")
        + f"**{network.get('architecture', '?')}** encoder/decoder, hidden layers {network.get('hidden_dims', '?')}\n"
        f"- **{network.get('likelihood', '?')}** likelihood"
        + (f" (σ {network.get('sigma_mode')})" if network.get("likelihood") == "gaussian" else "")
        + (" of the codes; each column in its own (below)" if dependency else "")
        + f"\n- input shape {network.get('input_shape', '?')}"
    )
    with st.expander(f"{len(architecture['layers'])} layers"):
        st.code("\n".join(architecture["layers"]), language=None)


def dataset_section(dataset_info: dict[str, Any]) -> None:
    st.subheader("Dataset")
    preprocessing = dataset_info.get("preprocessing") or {}
    st.markdown(
        f"- **{dataset_info.get('name', '?')}** ({dataset_info.get('kind', '?')}), "
        f"{dataset_info.get('n_train', '?')} train / {dataset_info.get('n_test', '?')} test rows\n"
        + (f"- image shape {dataset_info.get('image_shape')}, binarised: {preprocessing.get('binarize', False)}\n"
           if dataset_info.get("kind", "image") == "image" else
           f"- {dataset_info.get('n_features', '?')} features → {dataset_info.get('target_name') or 'no target'}, "
           f"standardised with train statistics\n")
        + f"- split seed {preprocessing.get('split_seed', '?')}"
    )


def training_section(training: dict[str, Any], name: str, rebuild: str) -> None:
    st.subheader("Training")
    history = training.get("history") or {}
    if not history.get("step"):
        st.info("This checkpoint has no training history.")
        return
    st.image(training_curves_svg(history), caption="Training curves (loss and train ELBO are running averages)")
    settings = training.get("settings") or {}
    st.caption(f"{settings.get('steps', '?')} steps, batch {settings.get('batch_size', '?')}, lr {settings.get('lr', '?')}, "
               f"seed {settings.get('seed', '?')}; {training.get('seconds', '?')} s on {training.get('device', '?')}. "
               f"Rebuild: `{rebuild or 'python -m vizvae rebuild'}`")
    download_csv("Training history (CSV)", csv_bytes(history_rows(history)), f"{name}-history.csv",
                 key="model_history_csv")


def evaluation_section(evaluation: dict[str, Any], unit: str) -> None:
    st.subheader("Evaluation")
    if evaluation:
        st.markdown(markdown_table(evaluation_rows(evaluation, unit), escape=plain))
        st.caption(evaluation_caption(evaluation, unit))
    else:
        st.info("This checkpoint has no evaluation results; `python -m vizvae train` writes them.")


def columns_section(model_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
    st.subheader("Columns")
    st.caption("One marginal VAE per column, in that column's likelihood; the dependency model sees their codes. "
               "Step through feature acquisition on the Acquisition page.")
    st.markdown(markdown_table(column_rows(model_config["column_names"], model_config["column_kinds"],
                                           model_config["n_categories"], dataset_info.get("target_name"),
                                           (model_config.get("dependency") or {}).get("target")), escape=plain))


def image_sections(ref: str, stamp: tuple, name: str, image_shape: tuple[int, ...]) -> None:
    st.subheader("Prior samples")
    seed = int(st.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="model_seed",
                               help="The same seed draws the same samples and picks the same test images."))
    st.caption("Decoder means of z ~ N(0, I).")
    prior = _prior_png(ref, stamp, seed, image_shape)
    st.image(prior, caption=f"{PRIOR_SAMPLES} prior samples, seed {seed}")
    download_png("Prior samples (PNG)", prior, f"{name}-prior-seed{seed}.png", key="model_prior_png")

    st.subheader("Test reconstructions")
    st.caption("Each row of test images is followed by its reconstruction (decoder mean at the encoder mean); "
               f"{RECONSTRUCTIONS_PER_CLASS} images per class.")
    try:
        reconstructions, shown = _reconstruction_png(ref, stamp, seed)
    except Exception as err:  # e.g. a user checkpoint whose dataset is not on this machine
        st.warning(f"No test reconstructions: {plain(shown_error(err, ''))}")
        return
    st.image(reconstructions, caption=f"test rows {', '.join(map(str, shown))}")
    download_png("Reconstructions (PNG)", reconstructions, f"{name}-reconstructions-seed{seed}.png",
                 key="model_reconstructions_png")

