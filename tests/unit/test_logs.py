"""The daemon's log writer (twelve.runtime.process.logs): rotation by size at line ends, and a
full disk that drops whole lines, says so once, and resumes with a count of what was lost.
The full disk is a real one: a small tmpfs (root only)."""
from __future__ import annotations

import os
import subprocess

import pytest

from conftest import fill_disk as fill
from twelve.runtime.process import logs


def lines(first: int, count: int) -> bytes:
    return b"".join(b"line %05d of the node's output\n" % i for i in range(first, first + count))


def test_rotation_keeps_the_newest_files_within_the_limit(tmp_path):
    path = tmp_path / "hello.log"
    log = logs.RotatingLog(path, max_bytes=100, keep=2, report=print)
    log.feed(lines(0, 10))
    log.close()
    files = [path.with_name("hello.log.2"), path.with_name("hello.log.1"), path]
    assert all(len(f.read_bytes()) <= 100 for f in files)
    assert lines(0, 10).endswith(b"".join(f.read_bytes() for f in files))
    assert not path.with_name("hello.log.3").exists()


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_drops_whole_lines_says_so_once_and_resumes(small_disk, monkeypatch):
    monkeypatch.setattr(logs, "RETRY_INTERVAL", 0.0)
    path = small_disk / "hello.log"
    said: list[str] = []
    log = logs.RotatingLog(path, max_bytes=1 << 20, keep=1, report=said.append)
    log.feed(lines(0, 3))
    filler = fill(small_disk)
    for first in range(3, 3000, 100):
        log.feed(lines(first, 100))  # every write fails; none may raise
    assert said == [logs.LOG_FULL.format(path=path, error=os.strerror(28))], said
    filler.unlink()
    log.feed(lines(5000, 2))
    log.close()
    text = path.read_text()
    head, notice, tail = text.partition("twelve: ")
    assert head.endswith("\n") and all(line.startswith("line ") for line in head.splitlines())
    dropped = int(tail.split()[0])
    written = len(head.splitlines())
    assert written + dropped == 3003, "every line is either in the log or counted"
    assert tail.splitlines()[1:] == ["line 05000 of the node's output",
                                     "line 05001 of the node's output"]
    assert said[1] == logs.STATUS_RESUMED.format(count=dropped)


def test_log_limits_are_plain_numbers_within_bounds():
    from twelve.runtime.config.env import ConfigError

    assert logs.limits({}) == (logs.DEFAULT_MAX_BYTES, logs.DEFAULT_KEEP)
    assert logs.limits({"TWELVE_LOG_MAX_BYTES": "2048", "TWELVE_LOG_FILES": "3"}) == (2048, 3)
    with pytest.raises(ConfigError) as info:
        logs.limits({"TWELVE_LOG_MAX_BYTES": "٣", "TWELVE_LOG_FILES": "1000000000"})
    text = info.value.render()
    assert info.value.exit_code == 78
    assert "TWELVE_LOG_MAX_BYTES" in text and "TWELVE_LOG_FILES" in text
    assert "TWELVE_LOG_MAX_BYTES   not an integer: '٣'" in text
    assert "TWELVE_LOG_FILES       must be between 1 and 1000, got 1000000000" in text

