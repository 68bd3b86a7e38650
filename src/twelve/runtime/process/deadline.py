"""The boot's deadline: a web node is ready within ``boot_timeout`` (TWELVE_BOOT_TIMEOUT) or it
ends, exit 1, with BOOT_TIMED_OUT; and a stop during a boot ends the node within its
``graceful_timeout``, exit 0, whether the server ever gets ready or not.

While a boot hangs nothing in the node's main thread can be relied on (an ASGI lifespan startup
that never completes holds the event loop; the server's signal handlers may not even be in
place), so a watchdog thread keeps the deadline. A stop during the boot is honoured at ready if
ready comes in time (the node drains as usual); otherwise, and at the boot deadline, the
watchdog ends the node itself: every worker SIGKILLed, the run files removed (as on every other
way out of the node), os._exit. A forked worker has no watchdog: fork copies only the thread
that forks.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

from twelve.runtime.errors import ERROR, OK, BootError
from twelve.runtime.process import notify, pids

POLL = 0.1  # seconds between looks at the node's state: flags set by handlers and threads

BOOT_TIMED_OUT = ("the server was not ready within {timeout:g} s (TWELVE_BOOT_TIMEOUT); "
                  "the node stopped it")
BOOT_TIMED_OUT_HINT = ("Something in the app's startup waits: see the log lines above (the ASGI "
                       "lifespan startup? a connection opened at import?). If the boot is "
                       "only slow, allow it more time: TWELVE_BOOT_TIMEOUT={more:g}")
STOPPED_WHILE_BOOTING = "the node was stopped before it was ready"


class BootTimedOut(BootError):
    def __init__(self, timeout: float) -> None:
        super().__init__(BOOT_TIMED_OUT.format(timeout=timeout),
                         hint=BOOT_TIMED_OUT_HINT.format(more=max(120, timeout * 2)))


def watch(node, boot_timeout: float, leave) -> threading.Thread:
    """Keep the boot's deadline of ``node`` (process.node.Node) from a daemon thread;
    ``leave()`` closes the control socket and removes the run files before it is ended."""
    thread = threading.Thread(target=_watch, args=(node, boot_timeout, leave),
                              name="twelve-boot-deadline", daemon=True)
    thread.start()
    return thread


def _watch(node, boot_timeout: float, leave) -> None:
    deadline = time.monotonic() + boot_timeout
    stop_deadline = None
    while True:
        time.sleep(POLL)
        with node.lock:
            if node.is_ready:
                return
            now = time.monotonic()
            if node.is_stopping() and stop_deadline is None:
                stop_deadline = now + node.graceful_timeout
            if stop_deadline is not None and now >= stop_deadline:
                _end(OK, None, leave)
            if now >= deadline:
                _end(ERROR, BootTimedOut(boot_timeout), leave)


def _end(code: int, error: BootError | None, leave) -> None:
    """End the node now, from the watchdog (the main thread may be stuck for good). Called
    with the node's lock held, so the node never turns ready meanwhile."""
    for pid in pids.children(os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    leave()
    pids.flush_stdio()
    if error is not None:
        print(error.render(), file=sys.stderr, flush=True)
        notify.report_to_daemon(f"exit {code}\n{error.render()}\n")
    else:
        notify.report_to_daemon(f"exit {code}\n{STOPPED_WHILE_BOOTING}\n")
    os._exit(code)
