"""One typo in the environment never forks the host to a stall nor ends in a traceback: a real
`bin/hello start` with WEB_CONCURRENCY=1000000000, or with a 100,000-character HOST, exits 78
naming the variable, having forked and bound nothing. The node runs in its own pids cgroup, so
even a broken check could fork no more than a handful of processes."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Release

pytestmark = pytest.mark.slow

PIDS_MAX = 24  # the node, its launcher's shell, a few workers: nothing like a fork bomb


class PidsCgroup:
    """A pids cgroup (v1 or v2) whose processes can never number more than PIDS_MAX."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        (path / "pids.max").write_text(f"{PIDS_MAX}\n")

    @classmethod
    def create(cls, name: str) -> "PidsCgroup":
        for parent in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
            if (parent.name == "pids" and parent.is_dir()) or _v2_with_pids(parent):
                try:
                    return cls(parent / name)
                except OSError:
                    continue
        pytest.skip("no writable pids cgroup to cap the node's forks")

    def join(self) -> None:
        """In the child, before exec: count this process and all it forks."""
        with open(self.path / "cgroup.procs", "w") as procs:
            procs.write(str(os.getpid()))

    def refused_forks(self) -> int:
        """How many forks the cap refused (pids.events: "max N")."""
        for line in (self.path / "pids.events").read_text().splitlines():
            key, _, count = line.partition(" ")
            if key == "max":
                return int(count)
        return 0

    def remove(self) -> None:
        for _ in range(50):
            pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)  # zombies the sandbox's init has not reaped yet
        raise AssertionError(f"{self.path} still holds processes")


def _v2_with_pids(root: Path) -> bool:
    controllers = root / "cgroup.controllers"
    return controllers.exists() and "pids" in controllers.read_text().split()


@pytest.fixture
def capped(request):
    cgroup = PidsCgroup.create(f"twelve-test-{os.getpid()}-{request.node.name[5:40]}")
    yield cgroup
    cgroup.remove()


def start_capped(rel: Release, cgroup: PidsCgroup, **env: str) -> subprocess.CompletedProcess:
    """`bin/hello start` in the cgroup; killed (and failed) if it is still up after 60 s."""
    proc = subprocess.Popen([str(rel.bin), "start"], env=dict(rel.env, **env), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=cgroup.join)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        raise AssertionError(f"start kept running with {env}:\n{out[-2000:]}{err[-2000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def nothing_listens(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def rel(hello_release, tmp_path):
    release = Release(hello_release, tmp_path)
    yield release
    release.cleanup()


def test_a_billion_workers_is_exit_78_and_forks_nothing(rel, capped):
    done = start_capped(rel, capped, WEB_CONCURRENCY="1000000000")
    assert done.returncode == 78, done.stderr[-2000:]
    assert "WEB_CONCURRENCY   1000000000 worker processes is more than the ceiling of" \
        in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert capped.refused_forks() == 0  # it never even tried to pass the cap
    assert nothing_listens(rel.port)
    # `check` evaluates the same settings: the same answer without starting anything.
    checked = rel("check", WEB_CONCURRENCY="1000000000")
    assert checked.returncode == 78 and "WEB_CONCURRENCY" in checked.stderr


def test_the_ceiling_can_be_raised_and_is_honoured(rel, capped):
    """TWELVE_MAX_WORKERS below the asked count is exit 78 too; the variable is named."""
    done = start_capped(rel, capped, WEB_CONCURRENCY="3", TWELVE_MAX_WORKERS="2")
    assert done.returncode == 78, done.stderr[-2000:]
    assert "(set by TWELVE_MAX_WORKERS)" in done.stderr
    assert nothing_listens(rel.port)


def test_a_host_of_100000_characters_is_exit_78(rel, capped):
    done = start_capped(rel, capped, HOST="x" * 100_000)
    assert done.returncode == 78, done.stderr[-2000:]
    assert "  HOST   not an IP address or host name: 'xxxx" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout and len(done.stderr) < 2000
    assert capped.refused_forks() == 0
    assert nothing_listens(rel.port)
