"""Real faults: a crashing process never takes the node down with it.

A worker killed with SIGABRT under load (what gunicorn's worker timeout sends) leaves the node
in control: its control socket stays until `stop`, and `pid`, `rpc`, `restart`, `stop` work.
Workers that die right after every fork stop the node within 10 s, exit 1, with one message,
for every kind of server (gunicorn's arbiter, granian's main process, twelve's prefork). A node
that exits, however, leaves no file in run/; a pid file is never trusted.

The crash loops fork a bounded number of times (the rule stops the node at the 5th death), and
each test kills what it started by pid.
"""
from __future__ import annotations

import http.client
import os
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import FIXTURES, Release, copy_project, release_env, twelve, wait_http
from test_server_matrix import serving_workers
from twelve.runtime.process.pids import alive, wait_gone
from twelve.runtime.process.respawn import WORKERS_KEEP_DYING, CRASH_LIMIT, CRASH_WINDOW

pytestmark = pytest.mark.slow

# server → what serves it with WEB_CONCURRENCY=2 (waitress: twelve's own prefork supervisor)
KINDS = {"gunicorn": "gunicorn", "granian": "granian", "prefork": "waitress"}
KEEP_DYING = WORKERS_KEEP_DYING.format(limit=CRASH_LIMIT, window=CRASH_WINDOW)
# every fork of the node from now on: a worker that exits 1 at once
CRASH_EVERY_FORK = "import os; os.register_at_fork(after_in_child=lambda: os._exit(1))"


@pytest.fixture(params=list(KINDS))
def rel(hello_release, tmp_path, request):
    rel = Release(hello_release, tmp_path, TWELVE_SERVER=KINDS[request.param],
                  WEB_CONCURRENCY="2")
    yield rel
    rel.cleanup()


def run_dir(rel: Release) -> Path:
    return Path(rel.env["RELEASE_TMP"]) / "run"


def run_files(rel: Release) -> list[str]:
    """What a node leaves in run/ but its cookie, which is kept for the next boot by design
    (docs/releases.md#the-cookie)."""
    if not run_dir(rel).is_dir():
        return []
    return sorted(p.name for p in run_dir(rel).iterdir() if p.name != "COOKIE")


def hammer(url: str, stop: threading.Event, done: list) -> None:
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                r.read()
            done.append(1)
        except (OSError, http.client.HTTPException):
            pass  # the request the aborted worker was serving may fail (cut short): the fault


def errors(output: str) -> list[str]:
    """The errors rendered by twelve (not a server's log lines)."""
    return [line for line in output.splitlines() if line.startswith("error:")]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


def test_a_worker_killed_by_sigabrt_under_load_leaves_the_node_in_control(rel):
    pid = rel.daemon()
    workers = serving_workers(pid, rel.port)
    assert len(workers) == 2, workers
    stop, done = threading.Event(), []
    clients = [threading.Thread(target=hammer, args=(rel.url("/"), stop, done))
               for _ in range(4)]
    for c in clients:
        c.start()
    try:
        time.sleep(0.3)
        victim = min(workers)
        os.kill(victim, signal.SIGABRT)
        assert wait_gone(victim, 30), "the worker did not die"
        wait_for(lambda: len(serving_workers(pid, rel.port)) == 2, 30,
                 "the dead worker was replaced")
        served = len(done)
        wait_for(lambda: len(done) > served, 30, "requests are served after the fault")
    finally:
        stop.set()
        for c in clients:
            c.join()
    socket = run_dir(rel) / "web.sock"
    assert socket.is_socket(), f"the control socket is gone: {run_files(rel)}"
    assert rel("pid", check=True).stdout.strip() == str(pid)
    assert rel("rpc", "1 + 1", check=True).stdout.strip() == "2"
    rel("restart", check=True)
    assert socket.is_socket() and rel("pid", check=True).stdout.strip() == str(pid)
    stopped = rel("stop")
    assert (stopped.returncode, stopped.stderr) == (0, "")
    assert wait_gone(pid, 5) and run_files(rel) == []
    log = (Path(rel.env["RELEASE_TMP"]) / "log" / "hello.log").read_text()
    assert errors(log) == [], "a worker's exit was reported as the node's:\n" + log


def test_workers_that_keep_dying_stop_the_node_within_10_s(rel, nodes):
    node = nodes([str(rel.bin), "start"], rel.env, rel.port).wait_ready(60)
    workers = serving_workers(node.proc.pid, rel.port)
    rel("rpc", CRASH_EVERY_FORK, check=True)
    started = time.monotonic()
    os.kill(min(workers), signal.SIGABRT)
    try:
        code = node.proc.wait(timeout=CRASH_WINDOW)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the node still runs {CRASH_WINDOW:.0f}s after its workers began to "
                    f"die ({time.monotonic() - started:.1f}s)")
    output = node.output()
    assert code == 1, output
    assert errors(output) == [f"error: {KEEP_DYING}"], "the cause, named once:\n" + output
    assert run_files(rel) == []


@pytest.fixture(scope="module")
def broken_release(tmp_path_factory) -> Path:
    """tests/fixtures/broken_app: an app that raises at import."""
    project = copy_project(FIXTURES / "broken_app",
                           tmp_path_factory.mktemp("broken") / "broken_app")
    twelve("release", cwd=project)
    return project / "_build" / "dev" / "rel" / "broken_app"


def test_an_app_that_crashes_at_import_leaves_no_run_file(broken_release, tmp_path):
    run = tmp_path / "rt" / "run"
    env = release_env(tmp_path, RELEASE_TMP=str(tmp_path / "rt"))
    for command in ("start", "daemon"):
        proc = subprocess.run([str(broken_release / "bin" / "broken_app"), command], env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert "RuntimeError: no database" in proc.stderr
        assert sorted(p.name for p in run.iterdir() if p.name != "COOKIE") == [], command


def test_a_config_error_at_boot_leaves_no_run_file(hello_release, tmp_path):
    rel = Release(hello_release, tmp_path)
    del rel.env["SECRET_KEY_BASE"]
    proc = rel("start")
    assert proc.returncode == 78, proc.stderr
    assert run_files(rel) == []


def test_a_pid_file_naming_another_process_is_not_trusted(hello_release, tmp_path):
    rel = Release(hello_release, tmp_path)
    stranger = subprocess.Popen(["sleep", "120"])
    try:
        pid = rel.daemon()
        (run_dir(rel) / "web.pid").write_text(f"{stranger.pid}\n")
        again = rel("daemon")
        assert again.returncode == 1
        assert f"hello is already running (pid {pid})" in again.stderr
        assert rel("pid", check=True).stdout.strip() == str(pid)
        rel("stop", check=True)
        assert wait_gone(pid, 5) and alive(stranger.pid), "stop stopped the node only"
        assert run_files(rel) == []
        rel.daemon()  # a pid file left by a node killed with -9 names a dead process
        os.kill(int(rel("pid", check=True).stdout), signal.SIGKILL)
        wait_for(lambda: rel("pid").returncode == 3, 10, "the killed node is gone")
        (run_dir(rel) / "web.pid").write_text(f"{stranger.pid}\n")
        second = rel.daemon()
        wait_http(rel.url("/"))
        assert (run_dir(rel) / "web.pid").read_text().strip() == str(second)
        rel("stop", check=True)
        assert alive(stranger.pid)
    finally:
        rel.cleanup()
        stranger.kill()
        stranger.wait()
