"""The client side of the control channel: pid, stop, restart, rpc and the remote console.

Import-light on purpose: these commands are run by hand and by scripts, and their cost is the
interpreter's start plus one round trip on a Unix socket.
"""
from __future__ import annotations

import sys
import time

from twelve.runtime.control import channel, cookie as cookies
from twelve.runtime.errors import ERROR, OK, STOPPING, TwelveError

RESTART_TIMEOUT = 120.0  # seconds for a node to be ready again after `restart`
STOPPED_DURING_RESTART = "{name} (pid {pid}) stopped instead of restarting"
STOPPED_DURING_RESTART_HINT = "A stop arrived meanwhile; start it again: {prog} daemon"


class Stopping(channel.ControlError):
    """`restart` of a node that is stopping."""

    exit_code = STOPPING


def call(release, process: str, message: dict, limit: int = channel.MAX_FRAME):
    """Send one request: (sock, info, the answer's first frame); a busy node is asked again."""
    name = release.name if process == "web" else f"{release.name} {process}"
    cookie = cookies.client_cookie(release.tmp, release.environ, process, name)
    return channel.call(channel.socket_path(release.tmp, process), cookie, message, name=name,
                        limit=limit)


class channel_errors:
    """A node that goes away in the middle of a conversation is one clear error. (A class:
    contextlib would cost every rpc its import.)"""

    def __init__(self, release) -> None:
        self.release = release

    def __enter__(self) -> None:
        pass

    def __exit__(self, kind, error, tb) -> None:
        if kind is not None and issubclass(kind, (OSError, channel.ProtocolError)):
            raise channel.ControlError(
                f"the control channel of {self.release.name} failed: {error}",
                hint="Did the node stop or restart meanwhile?") from None


def request(release, process: str, message: dict) -> dict:
    sock, _, answer = call(release, process, message)
    sock.close()
    return answer or {}


def pid(release, process: str) -> int:
    print(request(release, process, {"op": "info"})["pid"])
    return OK


def stop(release, process: str) -> int:
    from twelve.runtime.process.pids import wait_gone

    answer = request(release, process, {"op": "stop"})
    timeout = float(answer["graceful_timeout"]) + 10  # every node's info says it
    if not wait_gone(int(answer["pid"]), timeout):
        raise TwelveError(f"{release.name} (pid {answer['pid']}) did not stop within "
                          f"{timeout:.0f}s", hint="It may be stuck; kill it with SIGKILL.")
    return OK


def restart(release, process: str) -> int:
    """Ask for a restart and return once the node is ready again with a new boot (or, when a
    boot was in progress already, once that one is ready)."""
    from twelve.runtime.process.pids import alive

    before = request(release, process, {"op": "restart"})
    if "error" in before:
        raise (Stopping if before.get("state") == "stopping" else channel.ControlError)(
            str(before["error"]))
    pid, booting = int(before["pid"]), before.get("state") == "booting"
    deadline = time.monotonic() + RESTART_TIMEOUT
    while time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            info = request(release, process, {"op": "info"})
        except channel.ControlError:  # NotRunning included: between two boots' sockets
            if not alive(pid):
                _stopped_instead(release, process, pid)
            continue
        if info.get("state") == "stopping":
            _stopped_instead(release, process, pid)
        if info.get("ready") and (booting or info.get("boot_id") != before.get("boot_id")):
            return OK
    raise TwelveError(f"{release.name} was not ready again within {RESTART_TIMEOUT:.0f}s "
                      "after restart", hint=f"See its logs; `{release.prog} pid` tells whether "
                                            "it runs.")


def _stopped_instead(release, process: str, pid: int):
    prog = release.prog + ("" if process == "web" else f" {process}")
    raise Stopping(STOPPED_DURING_RESTART.format(name=release.name, pid=pid),
                   hint=STOPPED_DURING_RESTART_HINT.format(prog=prog))


def rpc(release, process: str, code: str) -> int:
    sock, _, message = call(release, process, {"op": "rpc", "code": code}, limit=1 << 30)
    sock.settimeout(None)  # the code may run as long as it needs
    with sock, channel_errors(release):
        while True:
            if message is None:
                raise TwelveError("the node closed the connection during rpc (did it stop?)")
            if not _echo(message):
                break
            message = channel.recv(sock, limit=1 << 30)
    if message.get("error"):
        sys.stderr.write(message["error"])
        return ERROR
    if message.get("value") is not None:
        print(message["value"])
    return OK


def _echo(message: dict) -> bool:
    """Print streamed output; True if the message was output."""
    if "out" in message:
        sys.stdout.write(message["out"])
        sys.stdout.flush()
        return True
    if "err" in message:
        sys.stderr.write(message["err"])
        sys.stderr.flush()
        return True
    return False


def remote(release, process: str) -> int:
    """An interactive REPL inside the node; lines also come from a pipe, for scripts."""
    from twelve.runtime.control import console

    sock, info, first = call(release, process, {"op": "console"})
    sock.settimeout(None)  # an interactive session waits for its user
    with sock, channel_errors(release):
        return console.Client(sock, release, info, interactive=sys.stdin.isatty(),
                              first=first).run()
