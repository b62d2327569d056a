"""Training: the one loop (``loop``), the stages of Algorithm 1 (``stages``), the model card
(``cards``), the recipes of the shipped models (``recipes``) and the CLI glue (``options``,
``commands``, ``staged_commands``, ``ugvae_commands``; ``commands`` imports the other two, never
the reverse).

Import the submodules directly (``from vizvae.train.loop import fit``): this package module
imports nothing, so reading ``recipes`` stays light (no torch) for the app's start.
"""
