"""The control channel serves everyone entitled to it: a crowd of rpc calls is queued, not
refused; idle connections, authenticated or not, never lock out `stop` or `restart`; an
authenticated connection that sends no request is closed after REQUEST_TIMEOUT. A real release,
a real node, real sockets."""
from __future__ import annotations

import select
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import Release, get
from twelve.runtime.control import channel
from twelve.runtime.process.pids import wait_gone

pytestmark = pytest.mark.slow


def sock_path(rel: Release) -> Path:
    return Path(rel.env["RELEASE_TMP"]) / "run" / "web.sock"


def cookie(rel: Release) -> bytes:
    return (Path(rel.env["RELEASE_TMP"]) / "run" / "COOKIE").read_bytes().strip()


class Hog:
    """Holds ``count`` idle connections, half of them authenticated, opening a new one whenever
    the node closes one: a same-uid process that never lets go, holding more than the slots."""

    def __init__(self, rel: Release, count: int) -> None:
        self.rel, self.count = rel, count
        self.socks: list[socket.socket] = []  # every one it opened, to close them all
        self.held: list[socket.socket | None] = [None] * count
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def __enter__(self) -> "Hog":
        self.thread.start()
        deadline = time.monotonic() + 30
        while len(self.socks) < self.count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(self.socks) >= self.count, "the hog could not connect"
        time.sleep(channel.EVICT_AFTER + 0.5)  # old enough to be evicted
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()
        for s in self.socks:
            s.close()

    def _open(self, authenticated: bool) -> socket.socket | None:
        try:
            if authenticated:
                return channel.connect(sock_path(self.rel), cookie(self.rel), name="hog")[0]
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(sock_path(self.rel)))
            return s
        except (OSError, channel.ControlError):
            return None  # between two boots' sockets: try again

    def _hold(self) -> None:
        kinds = [i % 2 == 0 for i in range(self.count)]
        held = self.held
        while not self.done.is_set():
            for i, authenticated in enumerate(kinds):
                if held[i] is None:
                    held[i] = self._open(authenticated)
                    if held[i] is not None:
                        self.socks.append(held[i])
            live = [s for s in held if s is not None]
            for s in select.select(live, [], [], 0.1)[0] if live else ():
                try:
                    gone = s.recv(65536, socket.MSG_DONTWAIT) == b""
                except BlockingIOError:
                    gone = False
                except OSError:
                    gone = True
                if gone:
                    held[held.index(s)] = None


@pytest.mark.parametrize("code", ["1 + 1", "import time; time.sleep(3); 1 + 1"])
def test_a_hundred_concurrent_rpc_calls_all_print_2(rel, code):
    """The second holds every connection a while: more than MAX_CONNECTIONS at once, surely."""
    rel.daemon()
    procs = [subprocess.Popen([str(rel.bin), "rpc", code], env=rel.env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(100)]
    results = [p.communicate(timeout=180) + (p.returncode,) for p in procs]
    failed = [r for r in results if r != ("2\n", "", 0)]
    assert not failed, f"{len(failed)} of 100 failed, e.g. {failed[:3]}"
    rel("stop", check=True)


def test_idle_connections_do_not_lock_out_restart_or_stop(rel):
    pid = rel.daemon()
    with Hog(rel, 40):
        restart = rel("restart")
        assert restart.returncode == 0, restart.stderr
        assert get(rel.url("/"))[0] == 200
    with Hog(rel, 40):
        started = time.monotonic()
        stop = rel("stop")
        assert stop.returncode == 0, stop.stderr
        assert time.monotonic() - started < channel.REQUEST_TIMEOUT, \
            "the idle connections made room at once, not when they timed out"
    assert wait_gone(pid, 15)


def test_an_idle_authenticated_connection_is_closed_after_the_timeout(rel):
    rel.daemon()
    sock, _ = channel.connect(sock_path(rel), cookie(rel), name="hello")
    with sock:
        sock.settimeout(channel.REQUEST_TIMEOUT + 20)
        started = time.monotonic()
        assert channel.recv(sock) == {"error": channel.IDLE}
        assert channel.recv(sock) is None
        assert channel.REQUEST_TIMEOUT - 1 < time.monotonic() - started < \
            channel.REQUEST_TIMEOUT + 20
    assert rel("pid").returncode == 0
    rel("stop", check=True)
