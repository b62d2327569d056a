"""vizvae: the Streamlit entry point. Page navigation and the sidebar model picker; the pages
live in pages/ (one file each) and share helpers from pages/_common.py."""

import streamlit as st

from pages._common import model_picker, open_pending_page, run_page

st.set_page_config(page_title="vizvae", page_icon=":material/blur_on:", layout="wide")

# One line per page. url_path is the page's address: /model (the default, also at /) and /latent_space.
PAGES = [
    st.Page("pages/model.py", title="Model", icon=":material/description:", url_path="model", default=True),
    st.Page("pages/latent_space.py", title="Latent space", icon=":material/scatter_plot:", url_path="latent_space"),
    st.Page("pages/global_local.py", title="Global & local", icon=":material/workspaces:", url_path="global_local"),
    st.Page("pages/disentanglement.py", title="Disentanglement", icon=":material/tune:", url_path="disentanglement"),
    st.Page("pages/posterior.py", title="Posterior", icon=":material/blur_circular:", url_path="posterior"),
    st.Page("pages/hmc_lab.py", title="HMC lab", icon=":material/science:", url_path="hmc_lab"),
    st.Page("pages/acquisition.py", title="Acquisition", icon=":material/checklist:", url_path="acquisition"),
    st.Page("pages/inpainting.py", title="Inpainting", icon=":material/format_paint:", url_path="inpainting"),
]

page = st.navigation(PAGES)
open_pending_page(PAGES)  # a first visitor who opened /<page> directly on a fresh server
model_picker()
run_page(page)
