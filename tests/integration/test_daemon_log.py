"""`bin/NAME daemon`'s log on a disk that fills up: the node keeps serving, the log writer says
so (systemd's STATUS=), drops whole lines while it must, and resumes with a count of them once
there is room. A real release, a real daemon, a real full tmpfs (root only)."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Release, fill_disk as fill, get
from twelve.runtime.process import logs

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a small tmpfs")]

SPEW = ("import sys\nfor i in range({n}): print(f'{tag} {{i}}', file=sys.__stdout__)\n"
        "sys.__stdout__.flush()")


def statuses(listener: socket.socket, until: str, timeout: float) -> list[str]:
    """The STATUS= lines received until one starts with ``until`` (or the timeout)."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        listener.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            message = listener.recv(4096).decode()
        except socket.timeout:
            break
        seen += [line[7:] for line in message.splitlines() if line.startswith("STATUS=")]
        if any(s.startswith(until) for s in seen):
            break
    return seen


def test_a_full_log_disk_is_said_once_and_logging_resumes(hello_release, tmp_path):
    rel = Release(hello_release, tmp_path)
    disk = Path(rel.env["RELEASE_TMP"]) / "log"
    disk.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], check=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify.sock"))
    rel.env["NOTIFY_SOCKET"] = str(tmp_path / "notify.sock")
    try:
        rel("eval", "hello.release.migrate()", check=True)
        rel.daemon()
        filler = fill(disk)
        rel("rpc", SPEW.format(n=3000, tag="while full"), check=True)
        assert all(get(rel.url("/"))[0] == 200 for _ in range(5)), "the node keeps serving"
        full = statuses(listener, until="log disk full", timeout=20)
        assert full[-1].startswith("log disk full: ") and str(disk / "hello.log") in full[-1], \
            full
        rel("rpc", SPEW.format(n=300, tag="still full"), check=True)
        assert not any(s.startswith("log disk full")
                       for s in statuses(listener, until="-", timeout=2)), "said once"
        filler.unlink()
        time.sleep(logs.RETRY_INTERVAL + 0.5)
        rel("rpc", SPEW.format(n=2, tag="room again"), check=True)
        resumed = statuses(listener, until="log writing again", timeout=20)
        assert resumed and resumed[-1].startswith("log writing again: "), resumed
        text = (disk / "hello.log").read_text()
        assert "lines of output were dropped" in text, text[-2000:]
        assert text.rstrip().endswith("room again 1"), text[-500:]
        assert get(rel.url("/"))[0] == 200
        rel("stop", check=True)
    finally:
        rel.cleanup()
        listener.close()
        subprocess.run(["umount", "-l", str(disk)], check=False)
