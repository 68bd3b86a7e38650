"""`bin/NAME pid` answers from the kernel's record of who holds the node's lock (the launcher,
without Python, issue 18) and stays right in every state: a running node, a stopped one, one
killed with -9 (its pid file left behind), and a pid file naming another live process."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def pid_file(rel) -> Path:
    return Path(rel.env["RELEASE_TMP"]) / "run" / "web.pid"


def test_pid_of_a_running_node_ignores_what_its_pid_file_says(rel):
    node = rel.daemon()
    answer = rel("pid")
    assert (answer.returncode, answer.stdout) == (0, f"{node}\n"), answer.stderr
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid_file(rel).write_text(f"{other.pid}\n")  # written over, or a recycled pid
        answer = rel("pid")
        assert (answer.returncode, answer.stdout) == (0, f"{node}\n")
        assert rel("pid", "worker").returncode == 3  # no such node: the runtime says so
        # the answer is the kernel's, not the control channel's: it holds without the socket
        (pid_file(rel).parent / "web.sock").unlink()
        answer = rel("pid")
        assert (answer.returncode, answer.stdout) == (0, f"{node}\n"), answer.stderr
    finally:
        other.kill()
        other.wait()


def test_pid_of_a_stopped_node_and_of_a_killed_one(rel):
    node = rel.daemon()
    assert rel("stop").returncode == 0
    answer = rel("pid")
    assert (answer.returncode, answer.stdout) == (3, ""), answer.stderr
    assert "hello is not running" in answer.stderr

    node = rel.daemon()
    os.kill(node, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while rel("pid").returncode != 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # the node's workers follow it (PR_SET_PDEATHSIG)
    assert pid_file(rel).exists(), "a kill -9 leaves the pid file: the case under test"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid_file(rel).write_text(f"{other.pid}\n")  # the dead node's pid, now someone else's
        answer = rel("pid")
        assert (answer.returncode, answer.stdout) == (3, ""), answer.stderr
    finally:
        other.kill()
        other.wait()
