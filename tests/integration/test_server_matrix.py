"""Every example × every server it supports, from one build per example, switched at boot with
TWELVE_SERVER, with two workers: daemon → ready, GET / 200, a database round trip, restart
under a bounded loopback load with zero failed requests and every worker replaced, SIGTERM
with a slow request in flight → it completes and the node exits 0, stop → exit 0; and
WEB_CONCURRENCY=3 → three workers, none left behind, none waiting out its settle on an idle
stop."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import Release, get

pytestmark = pytest.mark.slow

SECRETS = {"SECRET_KEY_BASE": "b" * 64, "SECRET_KEY": "d" * 64}


def visits(rel: Release) -> int:
    return json.loads(get(rel.url("/visits"))[1])["visits"]


def fastapi_round_trip(rel: Release) -> None:
    body = json.dumps({"name": "matrix"}).encode()
    request = urllib.request.Request(rel.url("/api/items"), data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.status in (200, 201)
    names = [item["name"] for item in json.loads(get(rel.url("/api/items"))[1])]
    assert "matrix" in names


def counter_round_trip(rel: Release) -> None:
    first = visits(rel)
    assert visits(rel) == first + 1


EXAMPLES_TABLE = {
    "hello": ("hello.release.migrate()", counter_round_trip,
              ("gunicorn", "waitress", "granian")),
    "hello_fastapi": ("hello_fastapi.release.migrate()", fastapi_round_trip,
                      ("uvicorn", "granian", "hypercorn")),
    "hello_django": ("hello_django.release.migrate()", counter_round_trip,
                     ("gunicorn", "uvicorn", "granian")),
}
RESTARTS = 2
CASES = [(example, server) for example, (_, _, servers) in EXAMPLES_TABLE.items()
         for server in servers]


@pytest.fixture
def release(example_release, tmp_path, request):
    example, server = request.param
    migrate = EXAMPLES_TABLE[example][0]
    rel = Release(example_release(example), tmp_path, TWELVE_SERVER=server, **SECRETS)
    rel.env["DATABASE_URL"] = f"sqlite:///{tmp_path}/{example}.db"
    rel("eval", migrate, check=True)
    yield rel
    rel.cleanup()


def hammer(url: str, stop: threading.Event, failures: list, done: list) -> None:
    deadline = time.monotonic() + 60
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                assert r.status == 200
                r.read()
            done.append(1)
        except Exception as e:  # noqa: BLE001 - every failure counts
            failures.append(repr(e))


@pytest.mark.parametrize("release", CASES, indirect=True, ids=[f"{e}-{s}" for e, s in CASES])
def test_serves_restarts_and_drains(release, nodes):
    rel = release
    example, server = rel.root.name, rel.env["TWELVE_SERVER"]
    rel.env["WEB_CONCURRENCY"] = "2"  # twelve's prefork for the single-process servers
    pid = rel.daemon()
    assert get(rel.url("/"))[0] == 200
    EXAMPLES_TABLE[rel.root.name][1](rel)
    workers = serving_workers(pid, rel.port)
    assert len(workers) == 2, f"workers holding the listening socket: {workers}"

    stop, failures, done = threading.Event(), [], []
    clients = [threading.Thread(target=hammer, args=(rel.url("/"), stop, failures, done))
               for _ in range(8)]
    for c in clients:
        c.start()
    restarts = []
    try:
        time.sleep(0.3)
        before = len(done)
        for _ in range(RESTARTS):  # a lost connection is a race: give it two chances
            restarts.append(rel("restart"))
            time.sleep(0.3)
    finally:
        stop.set()
        for c in clients:
            c.join()
    assert [r.returncode for r in restarts] == [0] * RESTARTS, restarts[-1].stderr
    assert failures == [], (f"{server}: {len(failures)} failed, e.g. {failures[:3]}; "
                            f"the node's log:\n{rel.log_tail()}")
    assert len(done) > before > 0
    assert int(rel("pid", check=True).stdout) == pid
    replaced = serving_workers(pid, rel.port)
    assert len(replaced) == 2 and not replaced & workers, "restart replaces every worker"
    stopped = rel("stop")
    assert (stopped.returncode, stopped.stdout) == (0, "")

    node = nodes([str(rel.bin), "start"], rel.env, rel.port).wait_ready()
    slow: list = []
    request = threading.Thread(target=lambda: slow.append(get(rel.url("/slow?seconds=1"))))
    request.start()
    time.sleep(0.4)
    assert node.terminate(timeout=30) == 0
    request.join()
    assert slow and slow[0][0] == 200, f"{example}: the in-flight request was not drained"


DRAIN_CASES = [("hello", "gunicorn"), ("hello", "waitress"), ("hello", "granian"),
               ("hello_fastapi", "uvicorn"), ("hello_fastapi", "hypercorn"),
               ("hello_fastapi", "granian")]
SLOW = 2.0  # seconds each slow request takes: the stop, and the probe, land during them


def refused_within(port: int, seconds: float) -> tuple[bool, float, str]:
    """Open a TCP connection: (refused, how long the answer took, what happened)."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False, time.monotonic() - started, "connected"
    except ConnectionRefusedError:
        took = time.monotonic() - started
        return took <= seconds, took, "refused"
    except OSError as e:
        return False, time.monotonic() - started, repr(e)


@pytest.mark.parametrize("release", DRAIN_CASES, indirect=True,
                         ids=[f"{e}-{s}" for e, s in DRAIN_CASES])
def test_stop_serves_the_backlog_and_refuses_latecomers(release):
    """Three slow requests on two workers (with a sync server, the third waits in the
    backlog), then a stop: all three are served, and a connection opened after the stop is
    refused at once instead of hanging through the drain."""
    rel = release
    rel.env["WEB_CONCURRENCY"] = "2"
    rel.daemon()
    results: list = []

    def slow_request() -> None:
        try:
            results.append(get(rel.url(f"/slow?seconds={SLOW}"))[0])
        except Exception as e:  # noqa: BLE001 - every failure counts
            results.append(repr(e))

    requests = [threading.Thread(target=slow_request) for _ in range(3)]
    for r in requests:
        r.start()
        time.sleep(0.05)
    time.sleep(0.4)  # all three connected: two in workers, the third served or queued
    stopping = subprocess.Popen([str(rel.bin), "stop"], env=rel.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # the stop has begun; the slow requests still run
        refused, took, what = refused_within(rel.port, 0.1)
        out, err = stopping.communicate(timeout=60)
    finally:
        if stopping.poll() is None:
            stopping.kill()
    for r in requests:
        r.join()
    assert results == [200, 200, 200], f"requests accepted before the stop: {results}"
    assert refused, f"a connection after the stop: {what} after {took * 1000:.0f} ms"
    assert stopping.returncode == 0, err


PROCESS_CASES = [("hello", "gunicorn"), ("hello", "waitress"), ("hello_fastapi", "uvicorn"),
                 ("hello_fastapi", "granian")]


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def holds_socket(pid: int, inode: str) -> bool:
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) == f"socket:[{inode}]" for fd in fd_dir.iterdir())
    except OSError:
        return False


def serving_workers(pid: int, port: int) -> set[int]:
    inode = listening_inode(port)
    return {c for c in children(pid) if holds_socket(c, inode)}


def listening_inode(port: int) -> str:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # LISTEN
                return fields[9]
    raise AssertionError(f"nothing listens on {port}")


@pytest.mark.parametrize("release", PROCESS_CASES, indirect=True,
                         ids=[f"{e}-{s}" for e, s in PROCESS_CASES])
def test_three_workers_and_nothing_left_behind(release):
    rel = release
    rel.env["WEB_CONCURRENCY"] = "3"
    pid = rel.daemon()
    for _ in range(10):
        assert get(rel.url("/"))[0] == 200
    inode = listening_inode(rel.port)
    workers = [c for c in children(pid) if holds_socket(c, inode)]
    assert len(workers) == 3, f"workers holding the listening socket: {workers}"
    tree = [pid, *children(pid)]
    assert rel("stop").returncode == 0
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() for p in tree) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [p for p in tree if Path(f"/proc/{p}").exists()]
    assert left == [], f"processes left behind: {left}"
    # An idle node's workers have no connection to wait for: each settle ends calm, even the
    # ones that find the listening already ended by another worker.
    assert "stopped waiting" not in rel.log_tail(1000), rel.log_tail()
