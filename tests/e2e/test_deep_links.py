"""A shared link as the very first request a fresh server gets, for every page.

Until some script of a process has called ``st.navigation``, Streamlit treats the folder
``pages/`` as a legacy multipage app: it runs the requested page file on its own and draws its
own page list (every file in pages/, ``_common`` included). Each page file hands over to the app
(``run_app``), so the link must open the app's page, in the view its query describes, under the
app's page list and model picker, and the legacy list must never be drawn, not even for a moment.

Every link needs a process of its own, so one server per page is started at once, and all the
tabs are opened before any is checked: the servers render in parallel.
"""

from __future__ import annotations

import subprocess
import urllib.parse
from dataclasses import dataclass

import pytest

from tests.e2e.conftest import (
    CHROMIUM, INSTALL_HINT, exceptions_on_screen, free_port, screenshot, start_streamlit, stop_streamlit, wait_for_app,
    wait_until_serving,
)

from app import PAGES

pytestmark = pytest.mark.e2e

TITLES = [title for _, title, _ in PAGES]  # app.py's navigation, in order
# Records the text of every link of Streamlit's own page list ever put on screen, from before the
# first byte (app.py draws its list itself, so this one must never hold a link).
NAVIGATION_WATCH = """
window.__legacyListSeen = [];
new MutationObserver(() => {
  for (const link of document.querySelectorAll('[data-testid="stSidebarNav"] a')) {
    const text = link.textContent.trim();
    if (!window.__legacyListSeen.includes(text)) window.__legacyListSeen.push(text);
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


@dataclass(frozen=True)
class DeepLink:
    path: str  # the page's address and a query that is not its default view
    heading: str  # the page's title
    shows: str  # text only that view draws (captions and chart titles included)


LINKS = [
    DeepLink("/model?model=mnist-vae-16d", "mnist-vae-16d", "assets/models/mnist-vae-16d"),
    DeepLink("/latent_space?model=mnist-vae-16d&method=pca&span=2.0&points=5", "Latent space",
             "by −2 … +2 around the encoder mean of row 5"),
    DeepLink("/atlas?model=shapes-betavae-b4&sel=rows:3,17&k=5", "Latent atlas", "2 items selected"),
    DeepLink("/global_local?model=mnist-ugvae&cluster=3&steps=5", "Global & local latent spaces",
             "UG-VAE, cluster d = 3"),
    DeepLink("/disentanglement?model=shapes-betavae-b4&image=3&range=1.5", "Disentanglement",
             "(test #3) and range (±1.5)"),
    DeepLink("/posterior?model=mnist-vae-2d&t=3", "Posterior", "chains at t = 3"),
    DeepLink("/hmc_lab?target=banana&T=15&iters=10", "HMC lab", "chains of T = 15 transitions"),
    DeepLink("/acquisition?model=boston-vaem&samples=50&t=2", "Acquisition", "after 2 acquired"),
    DeepLink("/inpainting?model=mnist-hhvae&mask=half&samples=8&iters=10&props=100", "Inpainting",
             "392 of 784 pixels hidden"),
]


def _stop(process: subprocess.Popen) -> None:
    stop_streamlit(process)


@pytest.fixture(scope="module")
def opened(browser):
    """One fresh server per link, all started together; then one tab per link, each opened on
    its link as its server's first request. Yields {path: tab}."""
    if CHROMIUM is None:
        pytest.skip(INSTALL_HINT)
    servers = {link.path: (free_port(), None) for link in LINKS}
    servers = {path: (port, start_streamlit(port)) for path, (port, _) in servers.items()}
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(NAVIGATION_WATCH)
    context.set_default_timeout(120_000)
    try:
        tabs = {}
        for path, (port, process) in servers.items():
            url = f"http://127.0.0.1:{port}"
            wait_until_serving(url, process)
            tabs[path] = context.new_page()
            tabs[path].goto(url + path)
        yield tabs
    finally:
        context.close()
        for _, process in servers.values():
            _stop(process)


@pytest.mark.parametrize("link", LINKS, ids=[link.path.split("?")[0].strip("/") for link in LINKS])
def test_a_shared_link_opens_its_page_and_view_on_a_fresh_server(opened, link):
    tab = opened[link.path]
    tab.wait_for_function("text => document.querySelector('[data-testid=\"stMain\"]')?.textContent.includes(text)",
                          arg=link.shows, timeout=180_000)
    wait_for_app(tab, timeout=180)
    screenshot(tab, f"deep-link-{link.path.split('?')[0].strip('/')}")
    main = tab.locator('[data-testid="stMain"]')
    assert exceptions_on_screen(tab) == []
    assert tab.get_by_text("Page not found").count() == 0  # e.g. /model, the default page's own name
    assert main.locator("h1").first.inner_text() == link.heading
    assert link.shows in main.text_content()
    assert tab.locator('[data-testid="stSidebar"] [role="combobox"]').count() >= 1  # the app's model picker
    url = urllib.parse.unquote(tab.url)
    for pair in link.path.split("?")[1].split("&"):  # the view stays in the URL, to be shared again
        assert pair in url or pair.replace(".0", "") in url, pair
    listed = tab.locator(".st-key-app_pages a").all_inner_texts()  # each text starts with its icon's name
    assert len(listed) == len(TITLES) and all(text.strip().endswith(title) for text, title in zip(listed, TITLES))
    seen = tab.evaluate("window.__legacyListSeen")
    assert seen == [], f"Streamlit's legacy page list was drawn: {seen}"
