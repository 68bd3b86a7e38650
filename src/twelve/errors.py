"""The builder's error types. Exit codes live in ``twelve.runtime.errors`` (one place)."""
from __future__ import annotations

from twelve.runtime.errors import CONFIG, ERROR, NOT_RUNNING, OK, USAGE, TwelveError, UsageError

__all__ = ["OK", "ERROR", "USAGE", "NOT_RUNNING", "CONFIG", "TwelveError", "UsageError",
           "ProjectError", "BuildError"]


class ProjectError(TwelveError):
    """pyproject.toml does not describe a valid release."""

    exit_code = USAGE


class BuildError(TwelveError):
    """Building the release failed; the previous release is left as it was."""

    exit_code = ERROR
