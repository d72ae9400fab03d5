"""The project's own error type: every expected failure (bad input, bad config) raises this."""

from __future__ import annotations

from pathlib import Path


class InpaintsegError(Exception):
    """An error caused by the user's input or configuration, with a message meant for a person."""


class DataError(InpaintsegError):
    """A file could not be read or is not what it should be. The message names the file."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(InpaintsegError):
    """An invalid configuration key or value."""
