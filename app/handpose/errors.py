"""User-facing errors: raised with a message that names the file or setting and the fix.

The command line and the app print them as one line, never as a traceback.
"""


class HandposeError(Exception):
    """An error a user can act on (bad file, bad setting, missing model)."""


class ModelFileError(HandposeError):
    """A model or metadata file is missing, truncated, foreign or inconsistent."""


class SettingsError(HandposeError):
    """A setting has the wrong type or is out of range."""


class SourceError(HandposeError):
    """A capture source cannot be opened or cannot deliver what the settings ask."""


class PipelineError(HandposeError):
    """The pipeline cannot go on: a stage fails on every frame or hangs (the app stops, Actcast
    restarts it)."""


class OutputError(HandposeError):
    """An output (overlay video, PNG folder, predictions file) cannot be written."""
