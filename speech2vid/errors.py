"""Typed errors. Library code raises these; only the CLI turns them into an exit code.

Every message is one line that says what was wrong and how to fix it, because the CLI prints it
as is (no traceback) for anything derived from :class:`UserError`.
"""

from __future__ import annotations


class Speech2VidError(Exception):
    """Base class of every error this package raises on purpose."""


class UserError(Speech2VidError):
    """Bad input from the user (a file, an option, a config); the CLI prints it without a traceback."""


class ConfigError(UserError):
    """A YAML config has an unknown key, a wrong type or a conflicting pair of values."""


class AudioError(UserError):
    """An audio file is missing, unreadable, corrupt, empty or silent."""


class FaceError(UserError):
    """A photo is unreadable or no usable face was found in it."""


class WeightsError(UserError):
    """A weights file is missing, corrupt or does not fit the model config."""


class EngineError(UserError):
    """An engine file or backend cannot be opened, or does not match what the runtime expects."""


class OutputError(UserError):
    """An output file cannot be written."""
