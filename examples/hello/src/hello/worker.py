"""A background process type: `bin/hello start worker` (or `daemon worker`).

It records a heartbeat in the database every few seconds until the node is asked to stop;
`twelve.stopping()` is set by SIGTERM/SIGINT (`bin/hello stop worker`) and by a restart.
"""
from __future__ import annotations

import logging

from twelve import get_env, stopping

from hello import db

log = logging.getLogger("hello.worker")
beats = 0


def main() -> None:
    global beats
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(name)s: "
                                                   "%(message)s")
    interval = float(get_env("hello", "heartbeat_seconds", 5))
    log.info("worker started; heartbeat every %ss", interval)
    while not stopping().wait(interval):
        beats += 1
        db.heartbeat()
    log.info("worker stopping after %d heartbeats", beats)
