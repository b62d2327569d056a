"""Model card: what the selected model is, how it was trained, how well it does, and what it
draws (prior samples) and reconstructs (test images)."""

from __future__ import annotations

import streamlit as st

from pages._common import checkpoint_stamp, current_ref, download_csv, download_png, load_model, run_through_entrypoint
from vizvae.checkpoint import checkpoint_dataset, read_config
from vizvae.errors import VizvaeError
from vizvae.viz import card
from vizvae.viz.figures import training_curves_figure
from vizvae.viz.tables import column_table, csv_bytes, evaluation_table, history_table

run_through_entrypoint()  # before anything is drawn: see its docstring

# The card reads config.json and the stored seed-0 grids: it needs no weights (and no torch) until
# the user asks for another seed, so the app's first page renders fast.
SAMPLES = card.SAMPLES
RECONSTRUCTIONS_PER_CLASS = card.RECONSTRUCTIONS_PER_CLASS


@st.cache_data(show_spinner=False, max_entries=32)
def _prior_png(ref: str, stamp: tuple, seed: int, image_shape: tuple[int, ...]) -> bytes:
    stored = card.stored_previews(stamp[0], read_config(stamp[0], check_model=False)) if seed == 0 else None
    return stored[0] if stored else card.prior_png(load_model(ref).model, image_shape, seed=seed)


@st.cache_data(show_spinner=False, max_entries=32)
def _reconstruction_png(ref: str, stamp: tuple, seed: int) -> tuple[bytes, list[int]]:
    stored = card.stored_previews(stamp[0], read_config(stamp[0], check_model=False)) if seed == 0 else None
    if stored:
        return stored[1], stored[2]
    checkpoint = load_model(ref)
    return card.reconstruction_png(checkpoint.model, checkpoint_dataset(checkpoint.config), seed=seed)


ref = current_ref()
if ref is None:
    st.info("Pick or open a model in the sidebar.")
    st.stop()
stamp = checkpoint_stamp(ref)
try:
    config = read_config(stamp[0], check_model=False)
except VizvaeError as err:
    st.error(str(err), icon=":material/error:")
    st.stop()
model_args = config.get("config", {})
dataset_info = config.get("dataset") or {}
architecture = config.get("architecture") or load_model(ref).model.describe()
evaluation = config.get("evaluation") or {}
training = config.get("training") or {}

st.title(config.get("name", ref))
st.caption(f"{config.get('model_class', config['model'])} · {stamp[0]}")

metrics = st.columns(4)
metrics[0].metric("parameters", f"{architecture['parameters']:,}")
metrics[1].metric("latent dimensions", " + ".join(str(d) for d in architecture["latent_dims"]))
metrics[2].metric("β (KL weight)", f"{model_args.get('beta', 1.0):g}")
if "test_elbo" in evaluation:
    metrics[3].metric("test ELBO (nats)", f"{evaluation['test_elbo']:.2f}")

left, right = st.columns(2)
with left:
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
with right:
    st.subheader("Dataset")
    preprocessing = dataset_info.get("preprocessing") or {}
    st.markdown(
        f"- **{dataset_info.get('name', '?')}** ({dataset_info.get('kind', '?')}), "
        f"{dataset_info.get('n_train', '?')} train / {dataset_info.get('n_test', '?')} test rows\n"
        + (f"- image shape {dataset_info.get('image_shape')}, binarised: {preprocessing.get('binarize', False)}\n"
           if dataset_info.get("kind", "image") == "image" else
           f"- {dataset_info.get('n_features', '?')} features → {dataset_info.get('target_name') or 'no target'}, "
           f"standardised with train statistics\n")
        +
        f"- split seed {preprocessing.get('split_seed', '?')}"
    )

st.subheader("Training")
history = training.get("history") or {}
if history.get("step"):
    st.plotly_chart(training_curves_figure(history, title=None), key="model_training_curves")
    settings = training.get("settings") or {}
    st.caption(f"{settings.get('steps', '?')} steps, batch {settings.get('batch_size', '?')}, lr {settings.get('lr', '?')}, "
               f"seed {settings.get('seed', '?')}; {training.get('seconds', '?')} s on {training.get('device', '?')}. "
               f"Rebuild: `{training.get('command') or 'python -m vizvae rebuild'}`")
    download_csv("Training history (CSV)", csv_bytes(history_table(history)), f"{config.get('name', ref)}-history.csv",
                 key="model_history_csv")
else:
    st.info("This checkpoint has no training history.")

st.subheader("Evaluation")
if evaluation:
    st.table(evaluation_table(evaluation))
    st.caption("Bounds on log p(x) of the test split; the IWAE bound tightens as K grows (Burda et al. 2016).")
else:
    st.info("This checkpoint has no evaluation results; `python -m vizvae train` writes them.")

model_config = config.get("config") or {}
if model_config.get("column_kinds"):  # a mixed-type table model: its columns instead of image grids
    st.subheader("Columns")
    st.caption("One marginal VAE per column, in that column's likelihood; the dependency model sees their codes. "
               "Step through feature acquisition on the Acquisition page.")
    st.table(column_table(model_config["column_names"], model_config["column_kinds"], model_config["n_categories"],
                          dataset_info.get("target_name"), (model_config.get("dependency") or {}).get("target")))
    st.stop()
if dataset_info.get("kind", "image") != "image" or not dataset_info.get("image_shape"):
    st.info("Image grids are drawn for image models only.")
    st.stop()

image_shape = tuple(dataset_info["image_shape"])
st.subheader("Prior samples")
seed = st.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="model_seed",
                       help="The same seed draws the same samples and picks the same test images.")
st.caption("Decoder means of z ~ N(0, I).")
prior = _prior_png(ref, stamp, int(seed), image_shape)
st.image(prior, caption=f"{SAMPLES} prior samples, seed {seed}")
download_png("Prior samples (PNG)", prior, f"{config.get('name', ref)}-prior-seed{seed}.png", key="model_prior_png")

st.subheader("Test reconstructions")
st.caption("Each row of test images is followed by its reconstruction (decoder mean at the encoder mean); "
           f"{RECONSTRUCTIONS_PER_CLASS} images per class.")
try:
    reconstructions, shown = _reconstruction_png(ref, stamp, int(seed))
except Exception as err:  # e.g. a user checkpoint whose dataset is not on this machine
    st.warning(f"No test reconstructions: {err}")
else:
    st.image(reconstructions, caption=f"test rows {', '.join(map(str, shown))}")
    download_png("Reconstructions (PNG)", reconstructions, f"{config.get('name', ref)}-reconstructions-seed{seed}.png",
                 key="model_reconstructions_png")
