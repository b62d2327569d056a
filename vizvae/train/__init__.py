"""Training loops, stages and the CLI glue."""

from vizvae.train.loop import TrainSettings, evaluate_model, fit

__all__ = ["TrainSettings", "evaluate_model", "fit"]
