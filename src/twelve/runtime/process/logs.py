"""The daemon's log writer: copies the node's output into a file and rotates it by size.

``TWELVE_LOG_MAX_BYTES`` (default 10 MiB) bounds a file; ``TWELVE_LOG_FILES`` (default 5) is
how many rotated files are kept beside the current one (NAME.log.1 … NAME.log.5).

A full disk (or any write that fails) never ends the writer: if it stopped reading, the node
would block on a full pipe or die of a broken one. So it keeps reading, drops whole lines while
it cannot write them, counting them, and says so once: its own stdio is /dev/null (a daemon
keeps no terminal), so it tells systemd (``STATUS=log disk full: …``) when NOTIFY_SOCKET is set.
At most once per ``RETRY_INTERVAL``, with the node's next output, it tries again; once the disk
has room, the log first says how many lines were lost, then goes on.
"""
from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from twelve.runtime.config.env import ConfigError, Recorder, env
from twelve.runtime.process import notify

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP = 5
# Bounds: a billion rotated files would stall every rotation on a billion renames.
MAX_BYTES_RANGE = (1024, 1 << 40)
KEEP_RANGE = (1, 1000)
RETRY_INTERVAL = 1.0         # seconds between two attempts to write again after a failure
RESUME_ROOM = 64 * 1024      # free bytes the disk needs before writing resumes

LOG_FULL = "log disk full: {path}: {error}; dropping the node's output until there is room"
LOG_FAILED = "log write failed: {path}: {error}; dropping the node's output until it works again"
LOG_RESUMED = ("twelve: {count} lines of output were dropped: {path} could not be written "
               "({error})\n")
STATUS_RESUMED = "log writing again: {count} lines were dropped"
_FULL = (errno.ENOSPC, errno.EDQUOT)


LIMITS = (("TWELVE_LOG_MAX_BYTES", DEFAULT_MAX_BYTES, MAX_BYTES_RANGE),
          ("TWELVE_LOG_FILES", DEFAULT_KEEP, KEEP_RANGE))


def limits(environ) -> tuple[int, int]:
    """(bytes a file may hold, rotated files kept), read by the typed readers: ConfigError
    (exit 78) naming every variable that is not a whole number within its bounds. `daemon`
    checks them before it forks anything."""
    with Recorder(environ) as recorder:
        values = [env.int(name, default=default, min=low, max=high)
                  for name, default, (low, high) in LIMITS]
    if recorder.problems:
        raise ConfigError(problems=recorder.problems.values(),
                          source="the daemon's log settings")
    return values[0], values[1]


def rotate(path: Path, keep: int) -> None:
    """NAME.log → NAME.log.1 → … → NAME.log.KEEP (the oldest is dropped)."""
    for index in range(keep, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        newer = path.with_name(f"{path.name}.{index - 1}") if index > 1 else path
        if newer.exists():
            os.replace(newer, older)


def write_rotating(fd: int, path: Path, environ) -> None:
    """Copy everything read from ``fd`` into ``path`` until EOF, rotating at the size limit."""
    max_bytes, keep = limits(environ)
    log = RotatingLog(path, max_bytes, keep,
                      report=lambda text: notify.sd_notify(f"STATUS={text}", environ))
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            log.feed(chunk)
    finally:
        log.close()


class RotatingLog:
    """The log file as a stream of lines that survives a disk that fills up and empties."""

    def __init__(self, path: Path, max_bytes: int, keep: int, report) -> None:
        self.path, self.max_bytes, self.keep, self.report = path, max_bytes, keep, report
        self.out: int | None = None
        self.size = 0
        self.line_start = True     # the stream (written or dropped) is at the start of a line
        self.failure: str | None = None
        self.torn = False          # the file ends in the middle of a line
        self.dropped = 0
        self.retry_at = 0.0

    def feed(self, chunk: bytes) -> None:
        if self.failure is not None:
            chunk = self._finish_torn_line(chunk)
            if not chunk or not self._resume():
                self._drop(chunk)
                return
        self._write(chunk)

    def close(self) -> None:
        if self.failure is not None and self.dropped:
            self.retry_at = 0.0
            self._resume()  # a last chance to say what was lost
        if self.out is not None:
            os.close(self.out)
            self.out = None

    def _write(self, chunk: bytes) -> None:
        while chunk:
            try:
                room = self._room()
                written = os.write(self.out, chunk[:_cut(chunk, room)])
                if not written:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            except OSError as e:
                self._fail(e)
                self._drop(chunk)
                return
            self.size += written
            self.line_start = chunk[written - 1:written] == b"\n"
            chunk = chunk[written:]

    def _room(self) -> int:
        """Bytes left in the current file; opens it, or rotates first, as needed."""
        if self.out is not None and self.size >= self.max_bytes:
            os.close(self.out)
            self.out = None
            rotate(self.path, self.keep)
        if self.out is None:
            self.out = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                               0o666)
            self.size = os.fstat(self.out).st_size
            if self.size >= self.max_bytes:
                return self._room()
        return self.max_bytes - self.size

    def _fail(self, error: OSError) -> None:
        self.failure = error.strerror or str(error)
        self.torn = not self.line_start
        self.retry_at = time.monotonic() + RETRY_INTERVAL
        template = LOG_FULL if error.errno in _FULL else LOG_FAILED
        self.report(template.format(path=self.path, error=self.failure))

    def _drop(self, chunk: bytes) -> None:
        if chunk:
            self.dropped += chunk.count(b"\n")
            self.line_start = chunk.endswith(b"\n")

    def _finish_torn_line(self, chunk: bytes) -> bytes:
        """Drop the rest of a line whose start was dropped: the log holds whole lines."""
        if self.line_start:
            return chunk
        newline = chunk.find(b"\n")
        if newline < 0:
            self._drop(chunk)
            return b""
        self._drop(chunk[:newline + 1])
        return chunk[newline + 1:]

    def _resume(self) -> bool:
        """Write the notice of what was lost, if the disk has room again; True if it did."""
        now = time.monotonic()
        if now < self.retry_at:
            return False
        self.retry_at = now + RETRY_INTERVAL
        notice = ("\n" if self.torn else "") + LOG_RESUMED.format(
            count=self.dropped, path=self.path, error=self.failure)
        try:
            self._room()
            stats = os.fstatvfs(self.out)
            if stats.f_bavail * stats.f_frsize < len(notice) + RESUME_ROOM:
                return False
            self.size += os.write(self.out, notice.encode())
        except OSError:
            return False
        self.report(STATUS_RESUMED.format(count=self.dropped))
        self.failure, self.torn, self.dropped = None, False, 0
        return True


def _cut(chunk: bytes, room: int) -> int:
    """Where to split ``chunk`` to fill ``room``: at a line end when there is one."""
    if len(chunk) <= room:
        return len(chunk)
    newline = chunk.rfind(b"\n", 0, room)
    return newline + 1 if newline >= 0 else room
