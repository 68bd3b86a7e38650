"""Workers, whatever server forks them (gunicorn's arbiter, granian's main process, twelve's
prefork supervisor): how one ends, and one rule for those that die on their own.

A worker ends with ``end_worker``: os._exit once its own work is done, so nothing it raised
unwinds into the node's code it was forked from (the node's control socket, pid file and lock
are the node's to remove, never a worker's).

A worker that dies while the node is not draining is a death. Each death is replaced after a
short delay that doubles with every death in the last ``CRASH_WINDOW`` seconds (0.1 s, 0.2 s,
0.4 s, 0.8 s): a worker that crashes right after its fork is not forked again as fast as it
dies. The ``CRASH_LIMIT``-th death within the window stops the node, exit 1, with
``WORKERS_KEEP_DYING``: a node whose workers cannot stay up is better down, where a supervisor
(systemd, the orchestrator) sees it, than forking forever.
"""
from __future__ import annotations

import time

from twelve.runtime.errors import BootError
from twelve.runtime.process.pids import flush_and_exit

CRASH_WINDOW = 10.0   # seconds
CRASH_LIMIT = 5       # worker deaths within the window that stop the node
FIRST_DELAY = 0.1     # seconds before the first replacement; doubles with each recent death

WORKERS_KEEP_DYING = ("workers keep dying ({limit} within {window:.0f} s); stopping the node")
WORKERS_KEEP_DYING_HINT = ("See the workers' last lines above in the node's output (its log "
                           "for a daemon): an exception, a signal, an exit status.")


class WorkersKeepDying(BootError):
    """The node stops: its workers died CRASH_LIMIT times within CRASH_WINDOW seconds."""

    def __init__(self) -> None:
        super().__init__(WORKERS_KEEP_DYING.format(limit=CRASH_LIMIT, window=CRASH_WINDOW),
                         hint=WORKERS_KEEP_DYING_HINT)


class Deaths:
    """The recent deaths of a node's workers: the delay before each replacement, and the
    limit."""

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self.times: list[float] = []
        self.not_before = 0.0   # the clock's time before which no replacement is forked

    def note(self) -> float:
        """Count a death; the delay before its replacement. WorkersKeepDying at the limit."""
        now = self.clock()
        self.times = [t for t in self.times if now - t < CRASH_WINDOW] + [now]
        if len(self.times) >= CRASH_LIMIT:
            raise WorkersKeepDying()
        delay = FIRST_DELAY * 2 ** (len(self.times) - 1)
        self.not_before = max(self.not_before, now + delay)
        return delay

    def wait(self) -> float:
        """Seconds until a replacement may be forked (0 when it may be now)."""
        return max(0.0, self.not_before - self.clock())


def end_worker(error: BaseException | None) -> None:
    """End a forked worker now: its exit status from ``error`` (a SystemExit's code, 1 for
    anything else), stdio flushed, none of the node's cleanup run."""
    code = 0
    if isinstance(error, SystemExit):
        code = error.code if isinstance(error.code, int) else (0 if error.code is None else 1)
    elif error is not None:
        if not isinstance(error, KeyboardInterrupt):
            import traceback

            traceback.print_exception(type(error), error, error.__traceback__)
        code = 1
    flush_and_exit(code)
