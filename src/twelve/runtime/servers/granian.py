"""granian: its main process runs in the node and spawns the workers (WSGI or ASGI).

granian binds its own socket by default; the node's listening socket is handed to it instead
(a SocketHolder of a dup), which is what makes restart and socket activation work. That reaches
into granian's server class, so the supported versions are checked at boot.

A stopping granian worker closes the connections it has accepted but not yet read a request
from, and its accept loop (in Rust) cannot be told to stop first. So the workers' signal handlers
are twelve's: on SIGTERM/SIGINT a worker stops accepting (servers.quiesce.forbid_accept), waits
until every connection it accepted has been read, and only then tells granian to drain. The
connections it no longer takes wait in the node's socket for the next boot.

A worker forked by granian drops the node's resources first (``hooks.after_fork``) and ends
through multiprocessing's os._exit. Workers that die on their own follow twelve's one rule
(twelve.runtime.process.respawn) instead of granian's (stop at the first death, or with
``respawn_failed_workers``, at a second one within 5.5 s of a respawn). granian's main process
has no liveness check of its workers: twelve's (twelve.runtime.process.heartbeat) kills a
worker silent for longer than ``worker_timeout``, and its death is replaced by the same rule.
"""
from __future__ import annotations

import math
import os
import signal
import socket
import threading
import time

from twelve.runtime.errors import BootError
from twelve.runtime.process import closing, heartbeat, respawn
from twelve.runtime.servers import DRAIN, FORCE, logging_config, quiesce


class Granian:
    name = "granian"
    interfaces = ("wsgi", "asgi")
    multiprocess = True

    def serve(self, app, kind, settings, sock, hooks) -> None:
        import multiprocessing

        from granian.constants import Interfaces

        server_class = node_class(sock, hooks,
                                  heartbeat.Heartbeats(settings.workers, settings.worker_timeout))
        install_worker_signals(sock)
        # granian's workers must be forked: they are handed the app object the node imported
        # (which no other start method can carry) and twelve's signal handlers. Python 3.14
        # defaults to forkserver, which granian turns into spawn.
        if multiprocessing.get_start_method() != "fork":
            multiprocessing.set_start_method("fork", force=True)
        # A worker's drain begins with the settle (servers.quiesce), then the graceful part.
        kill_timeout = max(1, math.ceil(settings.graceful_timeout + quiesce.SETTLE_TIMEOUT))
        server = server_class(
            target=settings.app_ref, address=settings.host, port=settings.port,
            interface=Interfaces.WSGI if kind == "wsgi" else Interfaces.ASGI,
            workers=settings.workers, workers_kill_timeout=kill_timeout,
            log_dictconfig=logging_config("_granian", "granian.access"),
            log_access=settings.access_log)
        try:
            server.serve(target_loader=lambda: app, wrap_loader=False)
        except SystemExit as e:
            if e.code not in (0, None) and server.crashed is None:
                raise BootError(f"granian stopped with exit status {e.code}",
                                hint="See its log lines above.") from None
        if server.crashed is not None:
            raise server.crashed


def node_class(sock, hooks, heartbeats):
    try:
        from granian._granian import SocketHolder
        from granian.server.mp import MPServer
    except ImportError as e:
        raise BootError(f"this granian is not supported by twelve's adapter: {e}",
                        hint="Use granian 2.x (tested with 2.8).") from None

    class Node(MPServer):
        crashed: respawn.WorkersKeepDying | None = None

        def _spawn_worker(self, idx, target, callback_loader):
            def worker(*args, **kwargs):
                hooks.after_fork()
                closing.started(os.getpid(), slot=idx)
                heartbeats.start_beating(idx)
                return target(*args, **kwargs)
            heartbeats.reset(idx)
            return super()._spawn_worker(idx, worker, callback_loader)

        def _serve_loop(self, spawn_target, target_loader):
            """granian's loop, for what twelve uses of it: a stop (SIGHUP too, see on_signal)
            and workers that die, replaced after respawn's delay, or the node stops; each
            second, workers silent too long are killed (a death like any other)."""
            from granian.log import logger

            deaths = respawn.Deaths()
            while True:
                self.main_loop_interrupt.wait(1.0)
                if self.interrupt_signal:
                    return
                heartbeats.kill_silent({w.inner.pid: w.idx for w in self.wrks}, logger.warning)
                if self.interrupt_children:
                    failed = list(self.interrupt_children)
                    self.interrupt_children.clear()
                    self.main_loop_interrupt.clear()
                    try:
                        _replace(self, deaths, failed, spawn_target, target_loader)
                    except respawn.WorkersKeepDying as e:
                        self.crashed = e
                        return

        def _init_shared_socket(self):
            fd = os.dup(sock.fileno())
            os.set_inheritable(fd, True)
            self._ssp = None
            self._shd = SocketHolder(fd, False, 2048)
            self._sfd = fd
            self._sso = socket.socket(fileno=fd)
            self._sso.set_inheritable(True)

        def _spawn_workers(self, spawn_target, target_loader):
            super()._spawn_workers(spawn_target, target_loader)
            hooks.ready()  # every worker forked (on_startup hooks run before any is)

        def signal_handler_interrupt(self, *args, **kwargs):
            self.on_signal(signal.SIGTERM, *args, **kwargs)

        def signal_handler_reload(self, *args, **kwargs):
            self.on_signal(signal.SIGHUP, *args, **kwargs)

        def on_signal(self, sig, *args, **kwargs):
            action = hooks.on_signal(sig)
            if action == FORCE:
                for worker in self.wrks:
                    worker.kill()
            elif action == DRAIN:  # SIGHUP too: drain, then the node re-execs
                MPServer.signal_handler_interrupt(self, *args, **kwargs)

    return Node


def _replace(server, deaths, failed: list, spawn_target, target_loader) -> None:
    """Replace each dead worker after respawn's delay, unless a stop came meanwhile."""
    from granian.log import logger

    for idx in failed:
        delay = deaths.note()
        logger.warning(f"starting another worker-{idx + 1} in {delay:.1f} s")
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not server.interrupt_signal:
            time.sleep(min(0.05, delay))
        if server.interrupt_signal:
            return
        server._respawn_workers([idx], spawn_target, target_loader)


def install_worker_signals(sock) -> None:
    """granian's workers install their signal handlers through granian._signals when they
    start, forked from this process: have them install twelve's."""
    import granian._signals as worker_signals

    if not all(hasattr(worker_signals, f) for f in ("set_loop_signals", "set_sync_signals")):
        raise BootError("this granian is not supported by twelve's adapter: granian._signals "
                        "has no set_loop_signals/set_sync_signals",
                        hint="Use granian 2.x (tested with 2.8).")

    def on_loop(loop):
        def install(sig, handler):
            try:
                loop.add_signal_handler(sig, handler, sig, None)
            except NotImplementedError:
                signal.signal(sig, handler)
        return stop_accepting_first(install, sock)

    worker_signals.set_loop_signals = on_loop
    worker_signals.set_sync_signals = lambda: stop_accepting_first(signal.signal, sock)


def stop_accepting_first(install, sock):
    """A worker's stop signal: forbid accept(), let what was accepted be read, then set
    granian's WorkerSignal (which drains in-flight requests). A second signal sets it now.
    On a stop, the last worker to accept first lets granian take what waits in the backlog,
    and ends the listening once it has stopped accepting (process.closing)."""
    from granian._granian import WorkerSignal

    event, lock = WorkerSignal(), threading.Lock()
    state = {"draining": False, "set": False}

    def set_once() -> None:  # a second set() before granian took the first one can block
        with lock:
            if state["set"]:
                return
            state["set"] = True
        event.set()

    local = quiesce.endpoint(sock)

    def drain() -> None:
        copies = closing.copies(sock)  # granian's own among them while its accept loop runs
        if closing.stopping() and closing.alone():
            closing.wait_taken(sock, quiesce.SETTLE_TIMEOUT)  # by granian's own accept loop
        if quiesce.forbid_accept():
            for pause in quiesce.settle(local):
                if state["set"]:
                    break  # a second signal: granian drains now
                time.sleep(pause)
        set_once()
        # granian's accept loop spins on a socket that no longer listens: end the listening
        # only once the loop has stopped, which closes granian's copy of the socket. A forced
        # drain ends this way too. An idle worker exits as soon as granian has the signal,
        # maybe before it gets here: the one still serving waits (bounded) for it to be gone.
        if closing.wait_closed_copy(sock, copies, quiesce.SETTLE_TIMEOUT):
            closing.finish(sock, wait=quiesce.SETTLE_TIMEOUT)

    def handler(signum, frame=None) -> None:
        if state["draining"]:
            set_once()  # a second signal forces
            return
        state["draining"] = True
        threading.Thread(target=drain, name="twelve-drain", daemon=True).start()

    for sig in (signal.SIGINT, signal.SIGTERM):
        install(sig, handler)
    return event


ADAPTER = Granian()
