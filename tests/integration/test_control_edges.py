"""Control requests that meet a node in the middle of something: booting, restarting, stopping.
Real releases, real processes, real sockets. A node never dies of a control request; a stop
during a restart's drain stops it gracefully, with every adapter; a second stop is idempotent;
a restart of a stopping node is refused at once."""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from conftest import Release, get
from twelve.runtime.control import channel
from twelve.runtime.errors import CONFIG
from twelve.runtime.process.pids import alive

pytestmark = pytest.mark.slow

SECRETS = {"SECRET_KEY_BASE": "b" * 64, "SECRET_KEY": "d" * 64}
EXAMPLES = {"hello": "hello.release.migrate()", "hello_fastapi": "hello_fastapi.release.migrate()"}
ADAPTERS = [("hello_fastapi", "uvicorn", "1"), ("hello_fastapi", "hypercorn", "1"),
            ("hello_fastapi", "granian", "1"), ("hello", "gunicorn", "1"),
            ("hello", "waitress", "1"), ("hello_fastapi", "uvicorn", "2")]  # 2: prefork


def make_release(example_release, tmp_path, example: str, server: str | None = None) -> Release:
    env = dict(SECRETS, **({"TWELVE_SERVER": server} if server else {}))
    rel = Release(example_release(example), tmp_path, **env)
    rel.env["DATABASE_URL"] = f"sqlite:///{tmp_path}/{example}.db"
    rel(*("eval", EXAMPLES[example]), check=True)
    return rel


@pytest.fixture
def fastapi(example_release, tmp_path):
    rel = make_release(example_release, tmp_path, "hello_fastapi")
    yield rel
    rel.cleanup()


def info(rel: Release) -> dict | None:
    """The node's info over its control channel, or None between two boots' sockets."""
    try:
        cookie = (Path(rel.env["RELEASE_TMP"]) / "run" / "COOKIE").read_bytes().strip()
        sock, _ = channel.connect(Path(rel.env["RELEASE_TMP"]) / "run" / "web.sock", cookie,
                                  name="node")
    except (channel.ControlError, FileNotFoundError):  # no cookie yet: before the first boot
        return None
    with sock:
        try:
            channel.send(sock, {"op": "info"})
            return channel.recv(sock)
        except (OSError, channel.ProtocolError):
            return None


def wait_for(predicate, timeout: float = 30, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(step)


def wait_port_closed(port: int, timeout: float = 30) -> None:
    def closed() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) != 0
    wait_for(closed, timeout)


def in_background(rel: Release, *args: str) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(rel(*args)))
    thread.start()
    return thread, out


def slow_request(rel: Release, seconds: float) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(get(rel.url(f"/slow?seconds={seconds}"))))
    thread.start()
    return thread, out


def test_restart_while_booting_is_a_restart_in_progress(fastapi):
    rel = fastapi
    pid = rel.daemon()
    first, out = in_background(rel, "restart")
    wait_for(lambda: (i := info(rel)) is not None and i["state"] == "booting", step=0.005)
    second = rel("restart")
    first.join()
    assert (second.returncode, out[0].returncode) == (0, 0), second.stderr + out[0].stderr
    assert alive(pid) and int(rel("pid", check=True).stdout) == pid
    assert get(rel.url("/"))[0] == 200
    assert info(rel)["state"] == "ready"
    rel("stop", check=True)


def test_stop_while_booting_is_honoured_cleanly(fastapi):
    rel = fastapi
    pid = rel.daemon()
    restarting, out = in_background(rel, "restart")
    wait_for(lambda: (i := info(rel)) is not None and i["state"] == "booting", step=0.005)
    stopped = rel("stop")
    restarting.join()
    assert stopped.returncode == 0, stopped.stderr
    assert not alive(pid)
    wait_port_closed(rel.port)
    assert out[0].returncode == 4 and "stopped instead of restarting" in out[0].stderr
    log = (Path(rel.env["RELEASE_TMP"]) / "log" / "hello_fastapi.log").read_text()
    assert "Traceback" not in log


@pytest.mark.parametrize("example,server,workers", ADAPTERS,
                         ids=[f"{s}-{w}" for _, s, w in ADAPTERS])
def test_stop_during_a_restarts_drain_stops(example_release, tmp_path, example, server,
                                            workers):
    rel = make_release(example_release, tmp_path, example, server)
    rel.env["WEB_CONCURRENCY"] = workers
    try:
        pid = rel.daemon()
        request, result = slow_request(rel, 3)
        time.sleep(0.5)
        restarting, restarted = in_background(rel, "restart")
        wait_for(lambda: (i := info(rel)) is not None and i["state"] == "restarting")
        started = time.monotonic()
        stopped = rel("stop")
        request.join()
        restarting.join()
        assert stopped.returncode == 0, stopped.stderr
        assert time.monotonic() - started < 15
        assert result[0][0] == 200, f"{server}: the in-flight request was not drained"
        assert not alive(pid), "stopped, not restarted"
        wait_port_closed(rel.port)
        assert restarted[0].returncode == 4, restarted[0].stderr
    finally:
        rel.cleanup()


def test_a_second_stop_is_idempotent_and_restart_is_refused(fastapi):
    rel = fastapi
    pid = rel.daemon()
    request, result = slow_request(rel, 3)
    time.sleep(0.5)
    first, out = in_background(rel, "stop")
    wait_for(lambda: (i := info(rel)) is not None and i["state"] == "stopping")
    started = time.monotonic()
    refused = rel("restart")
    assert refused.returncode == 4
    assert "is stopping; it cannot restart now" in refused.stderr
    assert time.monotonic() - started < 5, "refused at once"
    second = rel("stop")
    first.join()
    request.join()
    assert second.returncode == 0 and out[0].returncode == 0
    assert result[0][0] == 200, "no stop forced the drain"
    assert not alive(pid)


def test_sighup_while_booting_does_not_kill(fastapi):
    rel = fastapi
    pid = rel.daemon()
    restarting, out = in_background(rel, "restart")
    wait_for(lambda: (i := info(rel)) is not None and i["state"] == "booting", step=0.005)
    os.kill(pid, 1)
    restarting.join()
    assert out[0].returncode == 0, out[0].stderr
    assert alive(pid) and get(rel.url("/"))[0] == 200
    rel("stop", check=True)


def test_remote_fails_when_the_node_stops_mid_statement(fastapi):
    rel = fastapi
    rel.daemon()
    proc = rel("remote", input="import os, signal, time\n"
                                "os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)\n")
    assert proc.returncode == 1
    assert "closed the connection during the remote session" in proc.stderr


def test_an_empty_cookie_is_refused(fastapi):
    rel = fastapi
    rel.daemon()
    # rpc, not pid: the launcher answers pid from the lock without the channel (test_pid.py)
    proc = rel("rpc", "1 + 1", RELEASE_COOKIE="")
    assert proc.returncode == CONFIG and "the cookie from RELEASE_COOKIE is empty" in proc.stderr
    assert rel("rpc", "1 + 1", RELEASE_COOKIE=" " + (Path(rel.env["RELEASE_TMP"]) / "run" / "COOKIE")
               .read_text().strip() + "\n").returncode == 0, "RELEASE_COOKIE is stripped"
    rel("stop", check=True)


def test_a_foreign_run_dir_is_one_clear_error(fastapi, tmp_path):
    rel = fastapi
    run = Path(rel.env["RELEASE_TMP"]) / "run"
    run.parent.mkdir(parents=True, exist_ok=True)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    run.symlink_to(tmp_path)
    proc = rel("start")
    assert proc.returncode == 1 and "is not a directory" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert victim.read_text() == "precious\n"
    run.unlink()


def test_trickling_peers_do_not_lock_out_pid(fastapi):
    """More peers than slots, each sending a byte every second: `pid` still gets in at once
    (the oldest of them is evicted for it), and once the handshake deadline passes, they are
    all gone."""
    rel = fastapi
    pid = rel.daemon()
    path = str(Path(rel.env["RELEASE_TMP"]) / "run" / "web.sock")
    peers, stop = [], threading.Event()

    def trickle() -> None:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        peers.append(s)
        try:
            while not stop.wait(1):
                s.send(b"\x00")
        except OSError:
            pass

    threads = [threading.Thread(target=trickle) for _ in range(40)]
    for t in threads:
        t.start()
    try:
        time.sleep(channel.EVICT_AFTER + 0.5)
        started = time.monotonic()
        assert int(rel("pid", check=True).stdout) == pid
        assert time.monotonic() - started < channel.HANDSHAKE_TIMEOUT, "not after the deadline"
        time.sleep(6)  # the handshake deadline (5 s) for the whole handshake
        assert int(rel("pid", check=True).stdout) == pid
    finally:
        stop.set()
        for t in threads:
            t.join()
        for s in peers:
            s.close()
    rel("stop", check=True)
