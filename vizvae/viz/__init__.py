"""Pure functions from arrays to figures, image grids and tables (no Streamlit imports).

Submodules are imported on demand (``from vizvae.viz.figures import ...``) so that nothing here
pulls plotly or PIL into a process that does not draw. Nothing here runs a model: the numbers come
from ``vizvae.inference`` and ``vizvae.evaluation``.
"""
