"""Pure functions from arrays to figures, image grids and tables (no Streamlit imports).

Submodules are imported on demand (``from vizvae.viz.figures import ...``) so that nothing here
pulls plotly, PIL, umap or scikit-learn into a process that does not draw.
"""
