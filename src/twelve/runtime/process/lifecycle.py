"""How a node stops: the drain state its signal handlers share, and the signals of a node that
runs a plain function (a process type such as ``worker``).

``Drain`` decides what each SIGTERM/SIGINT/SIGHUP means, for every server adapter alike: the
first one begins a drain (SIGHUP: to restart, the others: to stop); a stop arriving during a
restart's drain turns it into a stop and the drain goes on gracefully; only a stop arriving
during a stop's drain forces. A SIGHUP during a drain changes nothing.

The function polls ``twelve.stopping()`` — an Event set by SIGTERM/SIGINT (drain) or SIGHUP
(restart) — and returns. If it does not return within the graceful timeout, or the drain is
forced, KeyboardInterrupt is raised in it: the force that a second Ctrl-C gives a server.
"""
from __future__ import annotations

import _thread
import signal
import threading
from contextlib import contextmanager

from twelve.runtime.process import notify

DRAIN, FORCE, IGNORE = "drain", "force", "ignore"  # what a signal asks the adapter to do
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_stopping = threading.Event()


def stopping() -> threading.Event:
    """Set when the node has been asked to stop or restart; check it between units of work."""
    return _stopping


class Drain:
    """Whether the node drains, and whether it restarts afterwards. Only flags: safe to use
    from signal handlers."""

    def __init__(self, stopping=notify.stopping) -> None:
        self.stopping = stopping   # called once, when the node is known to stop
        self.draining = False
        self.restart = False       # set when SIGHUP asked for a restart rather than a stop

    def on_signal(self, sig: int) -> str:
        """DRAIN (begin), IGNORE (nothing more to do) or FORCE (stop draining now)."""
        if not self.draining:
            self.draining = True
            self.restart = sig == signal.SIGHUP
            if not self.restart:
                self.stopping()
            return DRAIN
        if sig not in STOP_SIGNALS:
            return IGNORE
        if self.restart:  # a stop during a restart's drain: no re-exec, same graceful drain
            self.restart = False
            self.stopping()
            return IGNORE
        return FORCE


@contextmanager
def signals(graceful_timeout: float, drain: Drain):
    timer: list[threading.Timer] = []

    def handle(sig, frame):
        action = drain.on_signal(sig)
        if action == FORCE:
            raise KeyboardInterrupt
        if action == DRAIN:
            _stopping.set()
            timer.append(threading.Timer(graceful_timeout, _thread.interrupt_main))
            timer[0].daemon = True
            timer[0].start()

    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {sig: signal.signal(sig, handle) for sig in handled}
    try:
        yield drain
    except KeyboardInterrupt:
        if not _stopping.is_set():
            raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for t in timer:
            t.cancel()
