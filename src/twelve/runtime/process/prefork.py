"""twelve's own pre-fork supervisor, for servers that run one process (uvicorn, hypercorn,
waitress) when WEB_CONCURRENCY asks for several.

The node imports the app, then forks the workers, which all serve on the node's listening
socket. The node stays their supervisor: SIGTERM/SIGINT → TERM to every worker and wait for
them (bounded by the graceful timeout; a second stop or the deadline → KILL); SIGHUP → the
same drain, then the node re-execs, unless a stop arrives meanwhile (servers.Hooks); a worker that dies on its own is replaced, unless workers
keep dying, which stops the node. Handlers only set flags; the loop does the work.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import time
import traceback

from twelve.runtime.errors import BootError
from twelve.runtime.process.lifecycle import DRAIN, FORCE, Drain
from twelve.runtime.servers.quiesce import SETTLE_TIMEOUT

log = logging.getLogger("twelve.prefork")

CRASH_WINDOW = 10.0   # seconds
CRASH_LIMIT = 5       # worker deaths within the window that stop the node


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
        self.deaths: list[float] = []
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.ready_r, self.ready_w = os.pipe()

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
            readable = select.select([self.ready_r, self.wake_r], [], [], 1.0)[0]
            if self.ready_r in readable:
                waiting -= len(os.read(self.ready_r, waiting))
            if self.wake_r in readable:
                self._drain_wakeups()
            if any(s != signal.SIGCHLD for s in self.signals):
                self._loop()
                return False
            self._reap(respawn=True)
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
        pid = os.fork()
        if pid:
            self.workers[pid] = slot
            return
        code = 0
        try:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            for fd in (self.wake_r, self.wake_w, self.ready_r):
                os.close(fd)
            hooks = _WorkerHooks(self.hooks.after_fork, self.ready_w)
            hooks.after_fork()
            self.serve_worker(hooks)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 0
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _loop(self) -> None:
        while True:
            self._wait()
            while self.signals:
                sig = self.signals.pop(0)
                if sig != signal.SIGCHLD and self.hooks.on_signal(sig) == DRAIN:
                    self._stop()
                    return
            self._reap(respawn=True)

    def _wait(self, timeout: float = 1.0) -> None:
        import select
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
            log.warning("worker %d exited with %d; starting another", pid,
                        os.waitstatus_to_exitcode(status))
            self._note_death()
            self._spawn(slot)

    def _note_death(self) -> None:
        now = time.monotonic()
        self.deaths = [t for t in self.deaths if now - t < CRASH_WINDOW] + [now]
        if len(self.deaths) >= CRASH_LIMIT:
            self._kill(signal.SIGKILL)
            raise BootError(f"workers keep dying ({CRASH_LIMIT} in {CRASH_WINDOW:.0f}s); "
                            "stopping", hint="See the tracebacks above.")

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
