"""A boot never hangs, and a stuck worker never keeps its share of the traffic.

The boot: a fixture app whose ASGI lifespan startup never completes, under uvicorn alone and
under twelve's pre-fork supervisor: the boot fails at TWELVE_BOOT_TIMEOUT with its message,
exit 1, no run files and no worker left; `stop` or SIGTERM during such a boot ends the node
(exit 0, within its graceful_timeout).

Liveness: one worker of a running node SIGSTOPped, under gunicorn, granian and the pre-fork
supervisor (waitress): it is killed and replaced within TWELVE_WORKER_TIMEOUT plus slack, and
requests keep succeeding.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, Release, copy_project, get, twelve
from twelve.runtime.process import pids
from twelve.runtime.process.deadline import BOOT_TIMED_OUT

pytestmark = pytest.mark.slow

BOOT_TIMEOUT = 3
WORKER_TIMEOUT = 3
SLACK = 15  # seconds: a loaded machine, a respawn delay


@pytest.fixture(scope="module")
def hang_release(tmp_path_factory) -> Path:
    project = copy_project(FIXTURES / "hang_app", tmp_path_factory.mktemp("hang") / "hang_app")
    twelve("release", cwd=project)
    return project / "_build" / "dev" / "rel" / "hang_app"


def session_processes(sid: int) -> list[int]:
    """The live processes of a session (a node started with start_new_session, its workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and pids.alive(int(entry)):
            try:
                if os.getsid(int(entry)) == sid:
                    found.append(int(entry))
            except ProcessLookupError:
                pass
    return found


def run_files(tmp: Path) -> list[str]:
    run = tmp / "run"
    return sorted(p.name for p in run.glob("web.*")) if run.is_dir() else []


def start_hanging(rel: Release) -> subprocess.Popen:
    return subprocess.Popen([str(rel.bin), "start"], env=rel.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def end_session(proc: subprocess.Popen) -> None:
    """Whatever the test left of the node and its workers, killed by pid."""
    for pid in session_processes(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        proc.wait(10)


def assert_nothing_left(proc: subprocess.Popen, tmp: Path) -> None:
    assert run_files(tmp) == []
    deadline = time.monotonic() + 5  # PID 1 reaps orphans late
    while session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_processes(proc.pid) == [], "a worker outlived the node"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_boot_that_hangs_fails_at_its_deadline(hang_release, tmp_path, workers):
    rel = Release(hang_release, tmp_path, WEB_CONCURRENCY=workers,
                  TWELVE_BOOT_TIMEOUT=str(BOOT_TIMEOUT))
    proc = start_hanging(rel)
    try:
        began = time.monotonic()
        out, err = proc.communicate(timeout=BOOT_TIMEOUT + SLACK + 30)
        took = time.monotonic() - began
        assert proc.returncode == 1, out + err
        assert BOOT_TIMED_OUT.format(timeout=BOOT_TIMEOUT) in err
        assert "TWELVE_BOOT_TIMEOUT=120" in err  # how to allow more time
        assert took < BOOT_TIMEOUT + SLACK
        assert_nothing_left(proc, tmp_path / "rt")
    finally:
        end_session(proc)


@pytest.mark.parametrize("how", ["stop", "SIGTERM"])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_stop_during_a_hung_boot_ends_the_node(hang_release, tmp_path, workers, how):
    rel = Release(hang_release, tmp_path, WEB_CONCURRENCY=workers, TWELVE_BOOT_TIMEOUT="600",
                  HANG_GRACEFUL_TIMEOUT="2")
    proc = start_hanging(rel)
    try:
        deadline = time.monotonic() + 60
        while rel("pid").returncode != 0:  # its control channel is open: it is booting
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        began = time.monotonic()
        if how == "stop":
            stop = rel("stop")
            assert stop.returncode == 0, stop.stdout + stop.stderr
        else:
            os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(2 + SLACK) == 0
        assert time.monotonic() - began < 2 + SLACK
        assert_nothing_left(proc, tmp_path / "rt")
    finally:
        end_session(proc)


SERVERS = {"gunicorn": {}, "granian": {"TWELVE_SERVER": "granian"},
           "prefork": {"TWELVE_SERVER": "waitress"}}


@pytest.fixture
def liveness_node(hello_release, tmp_path, request, nodes):
    """A started node of hello (its output in a pipe: no daemon's log writer among its
    children) with two workers and a short TWELVE_WORKER_TIMEOUT; a worker the test stopped
    is continued at the end if it is still there."""
    rel = Release(hello_release, tmp_path, WEB_CONCURRENCY="2",
                  TWELVE_WORKER_TIMEOUT=str(WORKER_TIMEOUT), **SERVERS[request.param])
    rel("eval", "hello.release.migrate()", check=True)
    stopped: list[int] = []
    node = nodes([str(rel.bin), "start"], rel.env, rel.port).wait_ready()
    yield rel, node.proc.pid, stopped
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    node.terminate(60)
    rel.cleanup()


@pytest.mark.parametrize("liveness_node", list(SERVERS), indirect=True)
def test_a_stopped_worker_is_replaced(liveness_node):
    rel, node, stopped = liveness_node
    workers = wait_workers(node, 2)
    victim = workers[0]
    os.kill(victim, signal.SIGSTOP)
    stopped.append(victim)
    assert pids.wait_gone(victim, WORKER_TIMEOUT + SLACK), "the stopped worker is still there"
    assert victim not in wait_workers(node, 2)
    for _ in range(20):
        assert get(rel.url("/"))[0] == 200


def wait_workers(node: int, count: int, timeout: float = 30) -> list[int]:
    """The node's live worker processes, once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        workers = [pid for pid in pids.children(node) if pids.alive(pid)]
        if len(workers) == count or time.monotonic() > deadline:
            assert len(workers) == count, workers
            return sorted(workers)
        time.sleep(0.1)
