"""twelve's own pre-fork supervisor, for servers that run one process (uvicorn, hypercorn,
waitress) when WEB_CONCURRENCY asks for several.

The node imports the app, then forks the workers, which all serve on the node's listening
socket. The node stays their supervisor: SIGTERM/SIGINT → TERM to every worker and wait for
them (bounded by the graceful timeout; a second stop or the deadline → KILL); SIGHUP → the
same drain, then the node re-execs, unless a stop arrives meanwhile (servers.Hooks). A worker
that dies on its own is replaced after a growing delay, and workers that keep dying stop the
node (twelve.runtime.process.respawn, the rule of every server); so is a worker that stops
answering for longer than ``worker_timeout`` (twelve.runtime.process.heartbeat). A worker
never returns into the node's code: it ends with os._exit. Handlers only set flags; the loop does the work.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import time

from twelve.runtime.process import closing, heartbeat, respawn
from twelve.runtime.process.lifecycle import DRAIN, FORCE, Drain
from twelve.runtime.servers.quiesce import SETTLE_TIMEOUT

log = logging.getLogger("twelve.prefork")


class _WorkerHooks(Drain):
    """Hooks inside a worker: it tells the supervisor it is ready through a pipe; the node's
    own readiness and stopping are the supervisor's to report."""

    def __init__(self, after_fork, ready_fd: int) -> None:
        super().__init__(stopping=lambda: None)
        self.after_fork, self.ready_fd = after_fork, ready_fd

    def ready(self) -> None:
        try:
            os.write(self.ready_fd, b"r")
        except OSError:
            pass


class Supervisor:
    def __init__(self, settings, hooks, serve_worker) -> None:
        self.settings, self.hooks, self.serve_worker = settings, hooks, serve_worker
        self.workers: dict[int, int] = {}   # pid → slot
        self.signals: list[int] = []
        self.deaths = respawn.Deaths()
        self.vacant: list[int] = []          # slots whose worker died, replaced after a delay
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.ready_r, self.ready_w = os.pipe()
        self.heartbeats = heartbeat.Heartbeats(settings.workers, settings.worker_timeout)

    def run(self) -> None:
        logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                            format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: "
                                   "%(message)s")
        previous = self._install()
        try:
            for slot in range(self.settings.workers):
                self._spawn(slot)
            if self._await_workers():
                self.hooks.ready()
                self._loop()
        finally:
            self._restore(previous)
            for fd in (self.wake_r, self.wake_w, self.ready_r, self.ready_w):
                os.close(fd)

    def _await_workers(self) -> bool:
        """Until every worker said it is ready: the node is ready only then. False if a
        stop signal came first."""
        import select
        waiting = self.settings.workers
        while waiting > 0:
            timeout = min(1.0, self.deaths.wait()) if self.vacant else 1.0
            readable = select.select([self.ready_r, self.wake_r], [], [], timeout)[0]
            if self.ready_r in readable:
                waiting -= len(os.read(self.ready_r, waiting))
            if self.wake_r in readable:
                self._drain_wakeups()
            if any(s != signal.SIGCHLD for s in self.signals):
                self._loop()
                return False
            self._reap(respawn=True)
            self.heartbeats.kill_silent(self.workers, log.warning)
            self._replace()
        return True

    def _install(self) -> dict:
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        previous["wakeup"] = signal.set_wakeup_fd(self.wake_w)
        return previous

    def _restore(self, previous: dict) -> None:
        signal.set_wakeup_fd(previous.pop("wakeup"))
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _on_signal(self, sig, frame) -> None:
        self.signals.append(sig)

    def _spawn(self, slot: int) -> None:
        self.heartbeats.reset(slot)
        pid = os.fork()
        if pid:
            self.workers[pid] = slot
            closing.started(pid)
            return
        try:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            for fd in (self.wake_r, self.wake_w, self.ready_r):
                os.close(fd)
            hooks = _WorkerHooks(self.hooks.after_fork, self.ready_w)
            hooks.after_fork()
            self.heartbeats.start_beating(slot)
            self.serve_worker(hooks)
        except BaseException as e:
            respawn.end_worker(e)
        respawn.end_worker(None)

    def _loop(self) -> None:
        while True:
            self._wait()
            while self.signals:
                sig = self.signals.pop(0)
                if sig != signal.SIGCHLD and self.hooks.on_signal(sig) == DRAIN:
                    self._stop()
                    return
            self._reap(respawn=True)
            self.heartbeats.kill_silent(self.workers, log.warning)
            self._replace()

    def _wait(self, timeout: float = 1.0) -> None:
        import select
        if self.vacant:  # wake when the next replacement is due
            timeout = min(timeout, self.deaths.wait())
        if select.select([self.wake_r], [], [], timeout)[0]:
            self._drain_wakeups()

    def _drain_wakeups(self) -> None:
        try:
            os.read(self.wake_r, 4096)
        except BlockingIOError:
            pass

    def _reap(self, *, respawn: bool) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self.workers.pop(pid, None)
            if slot is None or not respawn:
                continue
            self._note_death(pid, status)
            self.vacant.append(slot)

    def _note_death(self, pid: int, status: int) -> None:
        try:
            delay = self.deaths.note()
        except respawn.WorkersKeepDying:
            self._kill(signal.SIGKILL)
            raise
        log.warning("worker %d %s; starting another in %.1f s", pid, _how(status), delay)

    def _replace(self) -> None:
        """Fork the replacements that are due (respawn.Deaths says when)."""
        while self.vacant and self.deaths.wait() == 0:
            self._spawn(self.vacant.pop(0))

    def _stop(self) -> None:
        """TERM every worker; wait for them; KILL on a second signal or at the deadline."""
        self._kill(signal.SIGTERM)
        # each worker first lets what it accepted be read (servers.quiesce), then drains
        deadline = time.monotonic() + self.settings.graceful_timeout + SETTLE_TIMEOUT
        while self.workers and time.monotonic() < deadline:
            self._wait(0.05)
            signals, self.signals = self.signals, []
            if any(self.hooks.on_signal(s) == FORCE for s in signals if s != signal.SIGCHLD):
                break  # a second stop forces; a stop during a restart's drain does not
            self._reap(respawn=False)
        if self.workers:
            self._kill(signal.SIGKILL)
        while self.workers:
            pid, _ = os.waitpid(-1, 0)
            self.workers.pop(pid, None)

    def _kill(self, sig: int) -> None:
        for pid in list(self.workers):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def _how(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"exited with status {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"
