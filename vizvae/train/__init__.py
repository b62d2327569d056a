"""Training loops (``loop``), stages, recipes of the shipped models and the CLI glue.

Import the submodules directly (``from vizvae.train.loop import fit``): this package module
imports nothing, so reading ``recipes`` stays light (no torch) for the app's start.
"""
