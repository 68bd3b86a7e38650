"""Signals for a node that runs a plain function (a process type such as ``worker``).

The function polls ``twelve.stopping()`` — an Event set by SIGTERM/SIGINT (drain) or SIGHUP
(restart) — and returns. If it does not return within the graceful timeout, or a second signal
arrives, KeyboardInterrupt is raised in it: the force that a second Ctrl-C gives a server.
"""
from __future__ import annotations

import _thread
import signal
import threading
from contextlib import contextmanager

from twelve.runtime import notify

_stopping = threading.Event()


def stopping() -> threading.Event:
    """Set when the node has been asked to stop or restart; check it between units of work."""
    return _stopping


class State:
    restart = False


@contextmanager
def signals(graceful_timeout: float):
    state = State()
    timer: list[threading.Timer] = []

    def handle(sig, frame):
        if _stopping.is_set():
            raise KeyboardInterrupt  # the second signal forces
        state.restart = sig == signal.SIGHUP
        if not state.restart:
            notify.stopping()
        _stopping.set()
        timer.append(threading.Timer(graceful_timeout, _thread.interrupt_main))
        timer[0].daemon = True
        timer[0].start()

    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {sig: signal.signal(sig, handle) for sig in handled}
    try:
        yield state
    except KeyboardInterrupt:
        if not _stopping.is_set():
            raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for t in timer:
            t.cancel()
