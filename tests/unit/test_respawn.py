"""The worker rules on their own: the back-off and the limit (respawn.Deaths), how a forked
worker ends (respawn.end_worker, with real forks), and who the node is (the lock's holder,
with a real flock in another process)."""
from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from twelve.runtime.errors import ERROR
from twelve.runtime.process import node, respawn


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_death_doubles_the_delay_and_the_fifth_within_ten_seconds_stops():
    clock = Clock()
    deaths = respawn.Deaths(clock)
    delays = []
    for _ in range(respawn.CRASH_LIMIT - 1):
        delays.append(deaths.note())
        assert deaths.wait() == pytest.approx(delays[-1])
        clock.now += 1
    assert delays == [0.1, 0.2, 0.4, 0.8]
    with pytest.raises(respawn.WorkersKeepDying) as e:
        deaths.note()
    assert e.value.exit_code == ERROR
    assert e.value.message == "workers keep dying (5 within 10 s); stopping the node"


def test_deaths_older_than_the_window_are_forgotten():
    clock = Clock()
    deaths = respawn.Deaths(clock)
    for _ in range(respawn.CRASH_LIMIT - 1):
        deaths.note()
    clock.now += respawn.CRASH_WINDOW + 1
    assert deaths.wait() == 0
    assert deaths.note() == respawn.FIRST_DELAY


def forked(child) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            child()
        finally:
            os._exit(99)  # end_worker did not end the process
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.parametrize("error,code", [(None, 0), (SystemExit(0), 0), (SystemExit(None), 0),
                                        (SystemExit(3), 3), (SystemExit("bye"), 1),
                                        (RuntimeError("boom"), 1), (KeyboardInterrupt(), 1)])
def test_a_worker_ends_with_its_own_status_and_runs_nothing_after(error, code, tmp_path):
    marker = tmp_path / "finally-ran"

    def child():
        try:
            respawn.end_worker(error)
        finally:
            marker.write_text("the node's cleanup ran in a worker")

    assert forked(child) == code
    assert not marker.exists()


def holding_lock(path):
    """Another process holding an flock on path, as a node holds run/PROCESS.lock."""
    code = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT);"
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="Linux: /proc/locks")
def test_the_node_is_the_lock_holder_never_the_pid_file(tmp_path):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    stranger = os.getppid()  # alive, and no node
    (run / "web.pid").write_text(f"{stranger}\n")
    (run / "web.lock").touch()
    assert node.node_pid(tmp_path, "web") is None, "a lock nobody holds: no node"
    holder = holding_lock(run / "web.lock")
    try:
        assert node.lock_holders(run / "web.lock") == {holder.pid}
        assert node.node_pid(tmp_path, "web") == holder.pid
        release = SimpleNamespace(tmp=tmp_path, name="hello", prog="bin/hello")
        with pytest.raises(node.AlreadyRunning, match=rf"already running \(pid {holder.pid}\)"):
            node.acquire_lock(release, "web")
    finally:
        holder.kill()
        holder.wait()
    assert node.node_pid(tmp_path, "web") is None
