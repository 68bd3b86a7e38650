"""Worker liveness (twelve.runtime.process.heartbeat) with a real forked process: one that
beats is left alone; stopped (SIGSTOP), it is killed once silent past the timeout."""
from __future__ import annotations

import os
import signal
import time

from twelve.runtime.process.heartbeat import WORKER_NOT_ANSWERING, Heartbeats

TIMEOUT = 0.5


def fork_beating(beats: Heartbeats, slot: int) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            beats.start_beating(slot)
            time.sleep(60)
        finally:
            os._exit(0)
    return pid


def test_a_beating_worker_lives_and_a_stopped_one_is_killed():
    beats = Heartbeats(2, TIMEOUT)
    pid = fork_beating(beats, 1)
    logged: list[str] = []
    try:
        time.sleep(TIMEOUT * 3)
        beats.kill_silent({pid: 1}, logged.append)
        assert logged == [] and os.waitpid(pid, os.WNOHANG) == (0, 0)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(TIMEOUT * 3)
        beats.kill_silent({pid: 1}, logged.append)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        prefix = WORKER_NOT_ANSWERING.split("{")[0]
        assert len(logged) == 1 and logged[0].startswith(prefix + str(pid))
        assert "TWELVE_WORKER_TIMEOUT=0.5" in logged[0]
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def test_a_fresh_slot_counts_as_alive():
    beats = Heartbeats(1, TIMEOUT)
    assert beats.silent_for(0) < TIMEOUT
