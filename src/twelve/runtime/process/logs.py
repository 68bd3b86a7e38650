"""The daemon's log writer: copies the node's output into a file and rotates it by size.

``TWELVE_LOG_MAX_BYTES`` (default 10 MiB) bounds a file; ``TWELVE_LOG_FILES`` (default 5) is
how many rotated files are kept beside the current one (NAME.log.1 … NAME.log.5).
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP = 5


def limits(environ) -> tuple[int, int]:
    def number(name: str, default: int) -> int:
        try:
            return max(1, int(environ.get(name, default)))
        except ValueError:
            return default
    return number("TWELVE_LOG_MAX_BYTES", DEFAULT_MAX_BYTES), number("TWELVE_LOG_FILES",
                                                                     DEFAULT_KEEP)


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
    out = open(path, "ab", buffering=0)
    size = out.tell()
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            while chunk:
                room = max_bytes - size
                if room <= 0:
                    out.close()
                    rotate(path, keep)
                    out = open(path, "ab", buffering=0)
                    size = 0
                    room = max_bytes
                cut = _cut(chunk, room)
                out.write(chunk[:cut])
                size += cut
                chunk = chunk[cut:]
    finally:
        out.close()


def _cut(chunk: bytes, room: int) -> int:
    """Where to split ``chunk`` to fill ``room``: at a line end when there is one."""
    if len(chunk) <= room:
        return len(chunk)
    newline = chunk.rfind(b"\n", 0, room)
    return newline + 1 if newline >= 0 else room
