"""Exit codes and the error types of the release runtime (stdlib only).

The exit codes are the one place they are defined; the builder imports them from here. Every
user-facing failure is a ``TwelveError`` rendered once at the edge (the ``twelve`` CLI or
the release's boot) as what is wrong, where, and how to fix it, never as a traceback.
"""
from __future__ import annotations

# Documented in docs/commands.md. 78 is sysexits' EX_CONFIG, which generated systemd units name
# in RestartPreventExitStatus so a misconfigured node is not restarted in a loop.
OK = 0
ERROR = 1
USAGE = 2
NOT_RUNNING = 3
STOPPING = 4       # `restart` of a node that is stopping
CONFIG = 78


class TwelveError(Exception):
    """Base of every error a user may see; ``exit_code`` says how the process ends."""

    exit_code = ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f"\n\n{self.hint}"
        return text


class UsageError(TwelveError):
    """A command line that cannot be understood."""

    exit_code = USAGE


class BootError(TwelveError):
    """The release cannot boot: a broken release, an app that fails to import, a bad server."""

    exit_code = ERROR
