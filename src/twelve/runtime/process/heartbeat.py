"""Liveness of forked workers, for the supervisors that have none of their own (twelve's
prefork supervisor, granian's main process): a worker that stops answering is killed and
replaced.

The supervisor maps one shared, anonymous page before it forks: one slot per worker, holding
the CLOCK_MONOTONIC time (the same clock in every process) the worker last said it is alive.
Each worker beats from a daemon thread every quarter of ``worker_timeout``; a worker that is
stopped (SIGSTOP), or frozen whole, stops beating. The supervisor looks at the slots about once
a second and SIGKILLs a worker silent for longer than ``worker_timeout`` (TWELVE_WORKER_TIMEOUT):
the worker's death is then an ordinary one, replaced under twelve.runtime.process.respawn's
rule. SIGKILL because a stopped process acts on no other signal.
"""
from __future__ import annotations

import mmap
import os
import signal
import struct
import threading
import time

SLOT = struct.Struct("d")
WORKER_NOT_ANSWERING = ("worker {pid} has not answered for {silent:.0f} s (more than "
                        "TWELVE_WORKER_TIMEOUT={timeout:g}); killing it")


class Heartbeats:
    """The shared slots of ``count`` workers; made in the supervisor before any fork."""

    def __init__(self, count: int, timeout: float) -> None:
        self.timeout = timeout
        self.page = mmap.mmap(-1, max(mmap.PAGESIZE, count * SLOT.size))
        for slot in range(count):
            self.reset(slot)

    def reset(self, slot: int) -> None:
        """A worker about to be forked into ``slot`` counts as alive from now."""
        SLOT.pack_into(self.page, slot * SLOT.size, time.monotonic())

    def silent_for(self, slot: int) -> float:
        return time.monotonic() - SLOT.unpack_from(self.page, slot * SLOT.size)[0]

    def start_beating(self, slot: int) -> None:
        """In the forked worker: beat from a daemon thread for as long as the process runs."""
        interval = max(0.1, self.timeout / 4)

        def beat() -> None:
            while True:
                self.reset(slot)
                time.sleep(interval)

        threading.Thread(target=beat, name="twelve-heartbeat", daemon=True).start()

    def kill_silent(self, workers: dict[int, int], log) -> None:
        """SIGKILL each worker (pid → slot) silent for longer than the timeout; the caller
        reaps it as any other death."""
        for pid, slot in list(workers.items()):
            silent = self.silent_for(slot)
            if silent <= self.timeout:
                continue
            log(WORKER_NOT_ANSWERING.format(pid=pid, silent=silent, timeout=self.timeout))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.reset(slot)  # killed once; its replacement starts afresh
