"""The errors vizvae raises at its boundaries. Each message says what was expected."""


class VizvaeError(Exception):
    """Base class: a user-facing problem with a one-line, actionable message."""


class DataError(VizvaeError):
    """A dataset name, file or value that vizvae cannot use."""


class CheckpointError(VizvaeError):
    """A checkpoint folder or file that does not load."""
