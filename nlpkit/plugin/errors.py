"""Errors a user can act on: one line for the user, the original cause kept for ``--debug``."""

from __future__ import annotations

import os


def first_line(error: BaseException) -> str:
    """The first line of an error's message (its type name when the message is empty)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


class NlpkitError(Exception):
    """Base class: its message is one line a user can act on; the CLI prints it and exits with status 2."""


class ConfigError(NlpkitError, ValueError):
    """A configuration value, name or combination that cannot work."""


class UnknownNameError(ConfigError, KeyError):
    """A name that no loaded plugin registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class NameConflictError(ConfigError):
    """Two plugins registered the same name and something asked for it."""


class PluginError(NlpkitError):
    """A plugin that failed to import, declared a bad hook, or raised inside a hook."""


class DataError(NlpkitError):
    """Input data that cannot be read; names the file, the line and what was expected."""

    def __init__(self, path: str | os.PathLike[str], message: str, line: int | None = None) -> None:
        self.path = os.fspath(path)
        self.line = line
        location = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{location}: {message}")


class CheckpointError(NlpkitError):
    """A checkpoint that is missing, corrupt, unsafe, or made by another task."""


class TrainingError(NlpkitError):
    """Training cannot go on (a non-finite loss); the message names the step and what to change."""


class ExportError(NlpkitError):
    """A model that cannot be exported (no fixed forward), or an export directory that cannot be read."""
