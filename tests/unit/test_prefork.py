"""twelve's pre-fork supervisor with real forked workers (trivial serve functions)."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from twelve.runtime.process import prefork
from twelve.runtime.errors import BootError
from twelve.runtime.process.lifecycle import Drain


class Settings:
    workers = 3
    graceful_timeout = 5.0
    worker_timeout = 30.0


class Hooks(Drain):
    """servers.Hooks without the node: what happened, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []
        super().__init__(stopping=lambda: self.events.append("stopping"))

    def ready(self) -> None:
        self.events.append("ready")

    def after_fork(self) -> None:
        pass


def serve_until_term(marks: Path):
    def serve(hooks) -> None:
        (marks / f"started-{os.getpid()}").write_text("")
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        hooks.ready()
        signal.sigwait([signal.SIGTERM])
        (marks / f"drained-{os.getpid()}").write_text("")
    return serve


def send_later(sig: int, delay: float) -> None:
    threading.Timer(delay, lambda: os.kill(os.getpid(), sig)).start()


def test_ready_after_every_worker_and_a_graceful_stop(tmp_path):
    hooks = Hooks()
    send_later(signal.SIGTERM, 1.0)
    prefork.Supervisor(Settings(), hooks, serve_until_term(tmp_path)).run()
    started = sorted(p.name for p in tmp_path.glob("started-*"))
    drained = sorted(p.name for p in tmp_path.glob("drained-*"))
    assert len(started) == 3 and len(drained) == 3, "every worker got TERM and drained"
    assert hooks.events == ["ready", "stopping"] and not hooks.restart


def test_sighup_drains_and_asks_for_a_restart(tmp_path):
    hooks = Hooks()
    send_later(signal.SIGHUP, 1.0)
    prefork.Supervisor(Settings(), hooks, serve_until_term(tmp_path)).run()
    assert hooks.restart and hooks.events == ["ready"]
    assert len(list(tmp_path.glob("drained-*"))) == 3


def test_workers_that_keep_dying_stop_the_node(tmp_path):
    def crash(hooks) -> None:
        raise RuntimeError("boom")

    started = time.monotonic()
    with pytest.raises(BootError, match="workers keep dying"):
        prefork.Supervisor(Settings(), Hooks(), crash).run()
    assert time.monotonic() - started < 10
