"""`bin/NAME daemon [PROCESS]`: detach the node (double fork, setsid), send its output to a
rotating log under RELEASE_TMP/log/, and return only when the node is ready — or with the
node's own failure and exit code, never a false success.

Process tree after `daemon`:  node (exec'd `bin/NAME start`, a session leader's child) and a
small log writer reading the node's stdout/stderr through a pipe; the log writer ends when the
node and all its workers have closed that pipe.
"""
from __future__ import annotations

import os
import select
import signal
import sys
import time
from pathlib import Path

from twelve.runtime.process import logs, notify
from twelve.runtime.errors import ERROR, OK, TwelveError

READY_TIMEOUT = 120.0  # seconds the daemon command waits for the node to be ready, at least:
READY_MARGIN = 30.0    # beyond a TWELVE_BOOT_TIMEOUT that asks for more (the node's own deadline)


def log_path(release, process: str) -> Path:
    name = release.name if process == "web" else f"{release.name}-{process}"
    return Path(release.tmp, "log", f"{name}.log")


def daemon(release, process: str) -> int:
    logs.limits(os.environ)  # a bad TWELVE_LOG_* is exit 78 before anything is forked
    log = log_path(release, process)
    log.parent.mkdir(parents=True, exist_ok=True)
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(ready_r)
        _detach_and_exec(release, process, log, ready_w)  # never returns
    os.close(ready_w)
    os.waitpid(child, 0)
    return _await_ready(ready_r, log)


def _detach_and_exec(release, process: str, log: Path, ready_w: int) -> None:
    try:
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        log_r, log_w = os.pipe()
        if os.fork() == 0:  # the log writer
            os.close(log_w)
            os.close(ready_w)
            _quiet_stdio()
            logs.write_rotating(log_r, log, os.environ)
            os._exit(0)
        os.close(log_r)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_w, 1)
        os.dup2(log_w, 2)
        os.close(devnull)
        os.close(log_w)
        os.set_inheritable(ready_w, True)
        env = dict(os.environ, **{notify.READY_FD: str(ready_w)})
        os.chdir("/")
        launcher = release.launcher
        os.execve(launcher, [launcher, "start", process], env)
    except BaseException as e:  # nothing may escape a forked child
        try:
            os.write(ready_w, f"exit 1\nerror: could not start the daemon: {e}\n".encode())
        finally:
            os._exit(1)


def _quiet_stdio() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def ready_timeout(environ) -> float:
    """How long `daemon` waits: READY_TIMEOUT, or longer than the node's own boot deadline
    when TWELVE_BOOT_TIMEOUT sets one beyond it (the node then reports its failure itself)."""
    try:
        boot = float((environ.get("TWELVE_BOOT_TIMEOUT") or "0").strip())
    except ValueError:
        return READY_TIMEOUT  # the node reports the bad value (exit 78) at once
    return max(READY_TIMEOUT, boot + READY_MARGIN) if boot == boot and boot < 1e9 else READY_TIMEOUT


def _await_ready(fd: int, log: Path) -> int:
    """Read the node's report: "ready", or "exit N" and its message."""
    timeout = ready_timeout(os.environ)
    deadline = time.monotonic() + timeout
    data = b""
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([pipe], [], [], remaining)[0]:
                raise TwelveError(f"the node was not ready within {timeout:.0f}s; it may "
                                  f"still be starting", hint=f"See its log: {log}")
            chunk = pipe.read(65536)
            if not chunk:
                break
            data += chunk
            if data.startswith(b"ready"):
                return OK  # workers forked before it may still hold the pipe open
    text = data.decode(errors="replace")
    if text.startswith("exit "):
        head, _, message = text.partition("\n")
        sys.stderr.write(message)
        try:
            return int(head.split()[1])
        except (IndexError, ValueError):
            return ERROR
    raise TwelveError("the node exited before it was ready", hint=f"See its log: {log}")
