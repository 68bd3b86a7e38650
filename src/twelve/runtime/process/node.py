"""A running node: one OS process per running process type, with its control channel.

Lifecycle of `start [PROCESS]`: take the process type's lock (one node per type) → evaluate the
runtime config → open the control socket → serve (the web process through its server adapter,
others by calling their function) → on SIGTERM/SIGINT drain and exit 0; on SIGHUP or `restart`
drain, keep the listening socket and the lock, and exec the launcher again in place (same pid),
so new code and config load while connections wait in the socket's backlog.

A node is ``booting`` until its server is ready, then ``ready``, then ``restarting`` or
``stopping`` while it drains. Control requests never kill it: a restart while booting or
restarting is one in progress already; a stop while booting is honoured as soon as the server's
signal handlers are in place (at ready); a stop while stopping changes nothing; a restart while
stopping is refused. Until the server installs its own handlers, the node's record signals only.
A boot has a deadline, and so has a stop during a boot: a node that is not ready in time ends
(twelve.runtime.process.deadline), so no hung startup keeps a node "booting" for ever.
"""
from __future__ import annotations

import fcntl
import gc
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

from twelve.runtime import system
from twelve.runtime.control import channel
from twelve.runtime.config.env import ConfigError
from twelve.runtime.process import deadline, notify, respawn
from twelve.runtime.errors import ERROR, OK, TwelveError

LOCK_FD = "TWELVE_LOCK_FD"      # the process type's lock, kept across a restart's exec
BOOTED_AT = "TWELVE_BOOTED_AT"  # first boot time, kept across restarts (uptime)
NOT_A_LOCK = "{name} does not name an open file descriptor"
NOT_A_LOCK_HINT = ("It is set by a node for its own restart, never by hand: unset it and "
                   "start again.")

BOOTING, READY, RESTARTING, STOPPING = "booting", "ready", "restarting", "stopping"
NODE_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOPPING_REFUSAL = ("{name} is stopping; it cannot restart now. Start it again once it has "
                    "stopped: {prog} daemon")


class AlreadyRunning(TwelveError):
    exit_code = ERROR


class Node:
    """The state the control channel reports and acts on."""

    def __init__(self, release, process: str, graceful_timeout: float) -> None:
        self.release, self.process = release, process
        self.boot_id = secrets.token_hex(8)
        self.pid = os.getpid()  # a forked worker runs this code too, under another pid
        self.graceful_timeout = graceful_timeout
        self.is_ready = False
        self.stop_requested = False  # by `stop`, or by a signal before the server's handlers
        self.lock = threading.Lock()  # control requests, one decision at a time
        self.drain = None  # the server's lifecycle.Drain, once it serves
        self.lock_fd = -1
        self.control: channel.ControlServer | None = None

    def state(self) -> str:
        drain = self.drain
        if self.stop_requested or (drain is not None and drain.draining and not drain.restart):
            return STOPPING
        if drain is not None and drain.draining:
            return RESTARTING
        return READY if self.is_ready else BOOTING

    def is_stopping(self) -> bool:
        """Asked to stop: by `stop` (a flag until ready) or by a signal, whoever's handlers
        took it."""
        return self.state() == STOPPING

    def info(self) -> dict:
        return {"pid": os.getpid(), "boot_id": self.boot_id, "ready": self.is_ready,
                "state": self.state(), "process": self.process, "version": self.release.vsn,
                "graceful_timeout": self.graceful_timeout}

    def ready(self, status: str) -> None:
        with self.lock:
            self.is_ready = True
            stop = self.stop_requested
        notify.ready(status)
        if stop:  # asked while booting: the server's handlers are in place now
            os.kill(os.getpid(), signal.SIGTERM)

    def request(self, op: str) -> tuple[dict, int | None]:
        """A control request's answer and the signal to send the node once it is answered."""
        with self.lock:
            state = self.state()
            if op == "stop":
                if state == STOPPING:
                    return {"ok": True, **self.info()}, None
                self.stop_requested = True
                # a restart's drain becomes a stop's (lifecycle.Drain); a boot's, at ready
                sig = None if state == BOOTING else signal.SIGTERM
                return {"ok": True, **self.info()}, sig
            if state == STOPPING:
                name = self.release.name if self.process == "web" else \
                    f"{self.release.name} {self.process}"
                prog = self.release.prog + ("" if self.process == "web" else f" {self.process}")
                return {"error": STOPPING_REFUSAL.format(name=name, prog=prog),
                        **self.info()}, None
            if state in (BOOTING, RESTARTING):
                return {"ok": True, "in_progress": True, **self.info()}, None
            return {"ok": True, **self.info()}, signal.SIGHUP

    def record_signal(self, sig, frame) -> None:
        """Before the server's handlers and after them: a boot is a restart already (SIGHUP
        changes nothing); a stop is honoured at ready, or before the re-exec; a second one
        forces."""
        if sig == signal.SIGHUP:
            return
        if self.stop_requested:
            raise KeyboardInterrupt
        self.stop_requested = True

    def is_worker(self) -> bool:
        """True in a process forked from the node (a server's worker)."""
        return os.getpid() != self.pid

    def after_fork(self) -> None:
        """In a forked worker: the lock and the control socket belong to the node only, and
        the worker dies with the node (a `kill -9` of the node must free the port too)."""
        if self.control is not None:
            self.control.sock.close()
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
        notify.forget_daemon()
        _die_with_parent()


def lock_path(tmp: Path, process: str) -> Path:
    return Path(channel.run_dir(tmp), f"{process}.lock")


def pid_path(tmp: Path, process: str) -> Path:
    return Path(channel.run_dir(tmp), f"{process}.pid")


def acquire_lock(release, process: str) -> int:
    """One node per process type: an flock that dies with its process (kill -9 included)."""
    inherited = os.environ.pop(LOCK_FD, None)
    if inherited is not None:
        from twelve.runtime.process.listen import fd_number
        try:
            fd = fd_number(inherited)
            os.set_inheritable(fd, False)
        except (ValueError, OSError):
            raise ConfigError(NOT_A_LOCK.format(name=LOCK_FD), hint=NOT_A_LOCK_HINT) from None
        return fd
    channel.make_run_dir(release.tmp)
    path = lock_path(release.tmp, process)
    while True:
        fd = channel.open_private(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = node_pid(release.tmp, process)
            who = release.name if process == "web" else f"{release.name} {process}"
            raise AlreadyRunning(f"{who} is already running (pid {pid or '?'})",
                                 hint=f"Stop it first: {release.prog} stop"
                                      + ("" if process == "web" else f" {process}")) from None
        if _same_file(fd, path):
            return fd
        # the node we waited on removed this file as it left (remove_run_files): a lock on
        # it locks nothing another node would open, so lock the file now at that path
        os.close(fd)


def node_pid(tmp: Path, process: str) -> int | None:
    """The pid of the running node of this process type, or None: the process holding its
    lock. run/PROCESS.pid is for people and is never trusted here: one left by a node killed
    with -9 (or written over by anyone) may name a process that is no node at all."""
    try:
        holders = lock_holders(lock_path(tmp, process))
    except OSError:  # no lock file: no node; no /proc/locks: not Linux
        return None
    return holders.pop() if len(holders) == 1 else None


def lock_holders(path: Path) -> set[int]:
    """The pids holding an flock on this file, from /proc/locks (Linux)."""
    st = os.stat(path)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    holders = set()
    with open("/proc/locks") as f:
        for line in f:
            fields = line.split()
            # "1: FLOCK  ADVISORY  WRITE 2118 fe:00:2147714 0 EOF"; waiters have "->" first
            if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode:
                holders.add(int(fields[4]))
    return holders


def write_pid(path: Path) -> None:
    """run/PROCESS.pid, created afresh: never written through a link someone left there."""
    _remove(path)
    fd = channel.open_private(path, os.O_WRONLY | os.O_EXCL)
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpid()}\n")


def start(release, process: str, *, repl: bool = False) -> int:
    """Boot and serve in the foreground until stopped; exec in place on restart. Every way out
    of the node removes its run files; a forked worker leaves through os._exit, touching none
    of them."""
    target = system.process_target(release, process)
    node = Node(release, process, 0.0)
    for sig in NODE_SIGNALS:
        signal.signal(sig, node.record_signal)
    # a restart re-execs with them blocked, so none is lost between the drain and here
    signal.pthread_sigmask(signal.SIG_UNBLOCK, NODE_SIGNALS)
    node.lock_fd = acquire_lock(release, process)
    listener = None
    try:
        restart, listener = boot_and_serve(release, node, target, repl)
        if node.is_worker():
            respawn.end_worker(None)
        signal.pthread_sigmask(signal.SIG_BLOCK, NODE_SIGNALS)
        if restart and not node.stop_requested:
            reexec(release, process, node.lock_fd, listener)  # returns only by raising
    except BaseException as e:
        if node.is_worker():
            respawn.end_worker(e)  # a server let its SystemExit through
        raise
    finally:
        if not node.is_worker():
            if listener is not None:
                listener.close()  # the port is free before the lock: the next node can bind
            remove_run_files(release.tmp, process)
    return OK


def boot_and_serve(release, node: Node, target: str, repl: bool):
    """The runtime config, the control socket and the pid file, then serve: (restart?, the
    listening socket to keep across it)."""
    process = node.process
    cfg = system.load_config(release, server=process == "web")
    twelve_cfg = cfg.get("twelve", {})
    from twelve.runtime.servers import GRACEFUL_TIMEOUT

    node.graceful_timeout = float(twelve_cfg.get("graceful_timeout", GRACEFUL_TIMEOUT))
    from twelve.runtime.control import cookie as cookies, session

    cookie = cookies.node_cookie(release.tmp, release.environ)

    node.control = channel.ControlServer(channel.socket_path(release.tmp, process), cookie,
                                         session.handler(node), node.info).start()
    listener = None
    try:
        write_pid(pid_path(release.tmp, process))
        if repl:
            session.attach_terminal(release)
        if node.stop_requested:
            restart = False  # asked to stop before it served: nothing to drain
        elif target == "server":
            listener, restart = serve_web(release, node, twelve_cfg)
        else:
            restart = run_function(release, node, target)
    finally:
        if not node.is_worker():
            node.control.close()
    return restart, listener


def remove_run_files(tmp: Path, process: str) -> None:
    """The node is leaving: its pid file, then its lock file while it still holds the lock
    (acquire_lock makes sure a node never keeps a lock on a file removed this way)."""
    _remove(pid_path(tmp, process))
    _remove(lock_path(tmp, process))


def leave_now(release, node: Node) -> None:
    """The run files of a node about to end from another thread than the main one (the boot
    deadline's): its control socket, pid and lock files."""
    if node.control is not None:
        node.control.close()
    remove_run_files(release.tmp, node.process)


def serve_web(release, node: Node, twelve_cfg: dict):
    from twelve.runtime import servers
    # closing maps its shared page now, before any worker is forked
    from twelve.runtime.process import closing, listen  # noqa: F401

    server = servers.get(twelve_cfg["server"])
    ref = system.app_ref(release, server)
    settings = servers.Settings.from_config(twelve_cfg, release, ref)
    deadline.watch(node, settings.boot_timeout, lambda: leave_now(release, node))
    app = system.load_app(ref)
    kind = servers.check_interface(server, app, ref)
    gc.freeze()  # what the node imported, the workers inherit: no collection of theirs touches it
    sock = listen.listening_socket(settings.host, settings.port, os.environ)
    status = f"{release.name} {release.vsn} listening on {listen.describe(sock)}"
    hooks = servers.Hooks(ready=lambda: node.ready(status), stopping=_stopping,
                          after_fork=node.after_fork)
    node.drain = hooks
    servers.run(server, app, kind, settings, sock, hooks)
    return sock, hooks.restart


def _stopping() -> None:
    """The web node stops for good: its last accepting worker ends the listening (closing)."""
    from twelve.runtime.process import closing

    closing.mark_stopping()
    notify.stopping()


def run_function(release, node: Node, target: str) -> bool:
    """A non-web process type: call its function; SIGTERM sets twelve.stopping()."""
    from twelve.runtime.process import lifecycle

    func = system.load_app(target)
    node.drain = lifecycle.Drain(notify.stopping)
    with lifecycle.signals(node.graceful_timeout, node.drain) as drain:
        node.ready(f"{release.name} {node.process} running")
        func()
    return drain.restart


def reexec(release, process: str, lock_fd: int, listener) -> None:
    """Exec bin/NAME start again in this process: new code and config, same pid and socket."""
    env = dict(os.environ)
    if env.pop("TWELVE_VSN_FROM_CURRENT", None):
        env.pop("RELEASE_VSN", None)  # a rebuilt release may name another version
    os.set_inheritable(lock_fd, True)
    env[LOCK_FD] = str(lock_fd)
    if listener is not None:
        os.set_inheritable(listener.fileno(), True)
        env["TWELVE_LISTEN_FD"] = str(listener.fileno())
    launcher = release.launcher
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(launcher, [launcher, "start", process], env)


def _die_with_parent() -> None:
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))
    except (OSError, AttributeError):
        pass  # not Linux: the server's own parent check remains


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
