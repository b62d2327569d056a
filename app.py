"""vizvae: the Streamlit entry point. Page navigation and the sidebar model picker; the pages
live in pages/ (one module each, drawn by its ``render()``) and share helpers from
pages/_common.py."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Callable

import streamlit as st

from pages._common import model_picker, preload_in_background, wait_for_preload

# a file: a Material icon name would make every browser fetch the icon from fonts.gstatic.com
FAVICON = Path(__file__).resolve().parent / "assets" / "favicon.png"

# One line per page: (module in pages/, title, icon). The module's name is the page's address
# (/latent_space); the first page is the default, also at /.
PAGES = (
    ("model", "Model", ":material/description:"),
    ("latent_space", "Latent space", ":material/scatter_plot:"),
    ("atlas", "Latent atlas", ":material/travel_explore:"),
    ("global_local", "Global & local", ":material/workspaces:"),
    ("disentanglement", "Disentanglement", ":material/tune:"),
    ("posterior", "Posterior", ":material/blur_circular:"),
    ("hmc_lab", "HMC lab", ":material/science:"),
    ("acquisition", "Acquisition", ":material/checklist:"),
    ("inpainting", "Inpainting", ":material/format_paint:"),
)


def page_renderer(name: str) -> Callable[[], None]:
    """``pages.<name>.render``, imported on the page's first visit: the model page needs no torch,
    so the app's first page does not wait for the other pages' imports."""
    def render() -> None:
        if name != PAGES[0][0]:
            wait_for_preload()  # the first page never waits; the others import after the preload
        import_module(f"pages.{name}").render()

    render.__name__ = name
    return render


def navigation_pages() -> tuple[list[st.Page], list[st.Page]]:
    """(every page st.navigation knows, the pages the sidebar lists).

    The first page is the default, served at /. Streamlit serves a default page only there, so a
    hidden twin under its own name keeps a link to /model working too."""
    listed = [st.Page(page_renderer(name), title=title, icon=icon, url_path=name if i else "home", default=i == 0)
              for i, (name, title, icon) in enumerate(PAGES)]
    name, title, icon = PAGES[0]
    twin = st.Page(page_renderer(name), title=title, icon=icon, url_path=name, visibility="hidden")
    return listed + [twin], listed


def main() -> None:
    """The app frame: the page the URL asks for, under the sidebar's page list and model picker.

    The page list is drawn with ``st.page_link`` (``client.showSidebarNavigation`` is off in
    .streamlit/config.toml), so Streamlit's legacy list of pages/ never shows, even for a fresh
    server's first request."""
    st.set_page_config(page_title="vizvae", page_icon=str(FAVICON), layout="wide")
    pages, listed = navigation_pages()
    page = st.navigation(pages, position="hidden")
    with st.sidebar.container(key="app_pages"):
        for entry in listed:
            st.page_link(entry)
    model_picker()
    page.run()
    preload_in_background()  # after the page is drawn: the other pages' imports, while the visitor reads


if __name__ == "__main__":
    main()
