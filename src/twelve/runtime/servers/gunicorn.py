"""gunicorn: its arbiter runs in the node's process and forks the workers (WSGI).

A worker ends with os._exit once gunicorn is done with it, whatever it raised: gunicorn lets a
worker's SystemExit unwind through the arbiter's stack, which is the node's, and the node's
cleanup (its control socket, pid file and lock) must never run in a worker. Workers that die on
their own follow twelve's one rule (twelve.runtime.process.respawn): each replacement waits a
growing delay, and too many deaths stop the node; gunicorn's own rule (respawn at once, for
ever, unless a worker fails to boot) is replaced. Liveness is gunicorn's own heartbeat (each
worker touches a temporary file; the arbiter kills one silent for ``timeout`` seconds), given
twelve's ``worker_timeout``. Its workers are gunicorn's sync workers with twelve's part of a
stop (``worker_class``, twelve.runtime.process.closing).
"""
from __future__ import annotations

import os
import signal

from twelve.runtime.errors import BootError
from twelve.runtime.process import closing, respawn
from twelve.runtime.servers import FORCE, IGNORE, logging_config


class Gunicorn:
    name = "gunicorn"
    interfaces = ("wsgi",)
    multiprocess = True

    def serve(self, app, kind, settings, sock, hooks) -> None:
        from gunicorn.app.base import BaseApplication

        options = {"bind": [settings.bind], "workers": settings.workers,
                   "graceful_timeout": max(1, round(settings.graceful_timeout)),
                   # gunicorn's own heartbeat: a worker silent this long is killed, replaced
                   "timeout": max(1, round(settings.worker_timeout)),
                   "proc_name": settings.proc_name,
                   "logconfig_dict": logging_config("gunicorn.error", "gunicorn.access"),
                   "post_fork": lambda arbiter, worker: hooks.after_fork(),
                   "logger_class": logger_class(settings.access_log),
                   "worker_exit": _worker_exit,
                   "child_exit": lambda arbiter, worker: arbiter.note_death(worker),
                   "worker_class": worker_class(sock)}

        class Application(BaseApplication):
            def load_config(self):
                for key, value in options.items():
                    self.cfg.set(key, value)
                # gunicorn ≥ 25 opens a control socket under $HOME by default: a release
                # writes only under RELEASE_TMP and has its own control channel.
                if "control_socket_disable" in self.cfg.settings:
                    self.cfg.set("control_socket_disable", True)

            def load(self):
                return app

        arbiter = arbiter_class(sock, hooks)(Application())
        try:
            arbiter.run()
        except SystemExit as e:
            if arbiter.crashed is not None:
                raise arbiter.crashed from None
            if e.code not in (0, None):
                raise BootError(f"gunicorn stopped with exit status {e.code}",
                                hint="See its log lines above.") from None


def logger_class(access_log: bool):
    """gunicorn's logger, which logs requests only when asked (TWELVE_ACCESS_LOG): with a
    logging config it would otherwise format every request, logged or not."""
    from gunicorn.glogging import Logger

    class NodeLogger(Logger):
        def access(self, resp, req, environ, request_time):
            if access_log:
                super().access(resp, req, environ, request_time)

    return NodeLogger


def _worker_exit(arbiter, worker) -> None:
    """A worker that stops cleanly (SystemExit) exits now, without the interpreter's teardown;
    anything else (a boot error's code) leaves the normal path to gunicorn."""
    import sys

    from twelve.runtime.process.pids import exit_now

    exc = sys.exc_info()[1]
    if isinstance(exc, SystemExit) and exc.code in (0, None):
        exit_now(0)


def worker_class(sock):
    """gunicorn's sync worker, which on a stop does its part of ending the listening
    (twelve.runtime.process.closing): the last worker to stop accepting takes what waits in the
    backlog, even while its current request runs, and serves it once that request is done."""
    import errno
    import threading

    from gunicorn.workers.sync import SyncWorker

    class TwelveSyncWorker(SyncWorker):
        taken: list = []

        def init_signals(self):
            super().init_signals()
            self.exiting = threading.Event()
            self.finisher = threading.Thread(target=self.finish, name="twelve-finish",
                                             daemon=True)
            self.finisher.start()

        def handle_exit(self, sig, frame):
            super().handle_exit(sig, frame)
            self.exiting.set()

        def finish(self):
            self.exiting.wait()
            taken: list = []
            closing.finish(sock, lambda conn, addr: taken.append((conn, addr)))
            self.taken = taken

        def accept(self, listener):
            try:
                super().accept(listener)
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
                self.alive = False  # the listening has ended: nothing more to accept

        def run(self):
            super().run()
            if not self.exiting.is_set():
                return
            self.finisher.join(timeout=1.0)
            for conn, addr in self.taken:
                conn.setblocking(True)
                self.handle(self.sockets[0], conn, addr)

    return TwelveSyncWorker


def arbiter_class(sock, hooks):
    from gunicorn.arbiter import Arbiter
    from gunicorn.errors import HaltServer
    from gunicorn.sock import create_sockets

    class Node(Arbiter):
        reported = False
        crashed: respawn.WorkersKeepDying | None = None
        deaths = None

        def note_death(self, worker):
            """gunicorn's child_exit: a worker that died while the node is not draining."""
            if hooks.draining or self.crashed is not None:
                return
            if self.deaths is None:
                self.deaths = respawn.Deaths()
            try:
                delay = self.deaths.note()
            except respawn.WorkersKeepDying as e:
                self.crashed = e
                raise HaltServer(e.message, 1) from None
            self.log.warning("starting another worker in %.1f s", delay)

        def manage_workers(self):
            if self.deaths is not None and self.deaths.wait() > 0:
                return  # a crashed worker's replacement is not due yet
            super().manage_workers()
            # Ready once every worker is forked (gunicorn's when_ready comes before any).
            if not self.reported and len(self.WORKERS) >= self.num_workers:
                self.reported = True
                hooks.ready()

        def wait_for_signals(self, timeout=1.0):
            if self.deaths is not None and len(self.WORKERS) < self.num_workers:
                timeout = min(timeout, max(self.deaths.wait(), 0.01))
            return super().wait_for_signals(timeout)

        def spawn_worker(self):
            node = os.getpid()
            try:
                pid = super().spawn_worker()
            except BaseException as e:
                if os.getpid() == node:
                    raise
                respawn.end_worker(e)  # gunicorn ends its workers with sys.exit
            if os.getpid() != node:
                respawn.end_worker(None)
            closing.started(pid)
            return pid

        def start(self):
            self.LISTENERS = create_sockets(self.cfg, self.log, [os.dup(sock.fileno())])
            super().start()

        def signal(self, sig, frame):
            # twelve's drain decides (servers.Hooks); a forced stop is gunicorn's quick
            # shutdown (QUIT), which its stop() looks for while draining.
            if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                action = hooks.on_signal(sig)
                if action == IGNORE:
                    return
                if action == FORCE:
                    sig = signal.SIGQUIT
            super().signal(sig, frame)

        def handle_term(self):
            raise StopIteration  # a drain, to stop or to restart (hooks.restart)

        handle_int = handle_term  # Ctrl-C drains too (gunicorn's own SIGINT is quick)
        handle_hup = handle_term

        def stop(self, graceful=True):
            # gunicorn's stop sleeps 100 ms between looks at its workers; wake as soon as
            # one has exited instead, so an idle node stops in milliseconds.
            import gunicorn.arbiter as arbiter_module

            real = arbiter_module.time
            arbiter_module.time = _ChildAwareTime(real, lambda: not self.WORKERS)
            try:
                super().stop(graceful)
            finally:
                arbiter_module.time = real

    return Node


class _ChildAwareTime:
    """The time module, but ``sleep`` returns early once a child process has exited (it is
    left to the arbiter to reap: WNOWAIT), or once ``done()`` (no worker left: the daemon's
    log writer is a child too, and lives on)."""

    def __init__(self, real, done=lambda: False) -> None:
        self._real, self._done = real, done

    def __getattr__(self, name):
        return getattr(self._real, name)

    def sleep(self, seconds: float) -> None:
        deadline = self._real.monotonic() + seconds
        while self._real.monotonic() < deadline and not self._done():
            try:
                if os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                    return
            except ChildProcessError:
                return
            self._real.sleep(0.005)


ADAPTER = Gunicorn()
