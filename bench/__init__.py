"""The benchmarks that drive the app as a user meets it (a real ``streamlit run`` in Chromium, and
AppTest): ``app`` (cold start, traversal grid, cached projection), ``pages`` (every page's first
render and main interaction) and ``load`` (concurrent heavy sessions on one server). They live
beside the app, not in the UI-free library; ``python -m vizvae bench`` runs them from the
repository root together with the library's own (``vizvae/bench``)."""
