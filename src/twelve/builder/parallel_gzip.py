"""The tarball's gzip stream: deflated on every core, reusing what the last tarball compressed,
and the same bytes whatever the number of cores or what was reused.

The ``tar`` step's cost is deflate. Two levers, both in the standard library:

1. **Blocks, compressed in parallel** (pigz's scheme; zlib releases the GIL). The tar stream is
   cut into blocks at points that depend on the content only, never on timing: before a member
   whose name hashes to a cut (``CUT_EVERY``) once the block holds ``MIN_BLOCK`` bytes, and
   inside any block that reaches ``MAX_BLOCK``. Each block is an independent raw deflate
   stream that ends on a byte boundary (``Z_SYNC_FLUSH``; the last one ``Z_FINISH``), so
   their concatenation is one deflate stream, framed as one gzip member (RFC 1952: no file
   name, mtime 0, CRC-32 and length over the whole). Any gunzip reads it.
2. **Reuse.** A block's compressed bytes are a function of its uncompressed bytes, the level
   and zlib's version alone, so a block whose sha256 the previous tarball's index lists is
   copied from that tarball instead of compressed again. Because cuts follow the names of
   the (sorted) members, a change to one file changes the block around it and the blocks
   re-align right after: a warm rebuild recompresses what changed. The index is trusted only
   while the tarball it describes has the size and mtime it recorded.

At most ``2 × workers`` blocks are in flight, so memory stays a few blocks' worth.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MIN_BLOCK = 256 << 10  # no cut before this many bytes: a flush and a cold dictionary cost ~0.3%
MAX_BLOCK = 2 << 20    # a block is cut here even inside a member: big files still go in parallel
CUT_EVERY = 16         # about one member in 16 starts a block (≈ 1 MiB for a Python release)
# magic, deflate, no flags, mtime 0, no extra flags, OS unknown (as Python's gzip module writes)
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def _key(block: bytes, level: int, last: bool) -> str:
    return hashlib.sha256(bytes((level, last)) + block).hexdigest()


def _deflate(block: bytes, level: int, last: bool) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(block) + compressor.flush(
        zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class Previous:
    """The last tarball and its index (key → offset, length): compressed blocks to reuse."""

    def __init__(self, tarball: Path, blocks: dict[str, list[int]]) -> None:
        self.fd = os.open(tarball, os.O_RDONLY | os.O_CLOEXEC)
        self.blocks = blocks

    @classmethod
    def load(cls, index: Path, level: int) -> "Previous | None":
        """The index at ``index`` if it matches this level, zlib and its tarball, else None."""
        try:
            data = json.loads(index.read_text())
            tarball = index.with_name(data["tarball"])
            st = tarball.stat()
            if (data["level"], data["zlib"], data["size"], data["mtime_ns"]) != \
                    (level, zlib.ZLIB_RUNTIME_VERSION, st.st_size, st.st_mtime_ns):
                return None
            return cls(tarball, data["blocks"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # no index, or not one we can trust: compress everything

    def get(self, key: str) -> bytes | None:
        where = self.blocks.get(key)
        if where is None:
            return None
        data = os.pread(self.fd, where[1], where[0])
        return data if len(data) == where[1] else None

    def close(self) -> None:
        os.close(self.fd)


class ParallelGzipWriter:
    """A binary file object for ``tarfile``: ``member(name)`` before each member's bytes,
    ``write`` them, then ``close``; ``index`` then maps each block's key to its place."""

    def __init__(self, raw, level: int, previous: Previous | None = None,
                 workers: int | None = None) -> None:
        self.raw, self.level, self.previous = raw, level, previous
        workers = max(1, workers or os.cpu_count() or 1)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="deflate")
        self.in_flight: deque = deque()
        self.limit = 2 * workers
        self.buffer = bytearray()
        self.crc = self.size = 0
        self.offset = len(HEADER)
        self.index: dict[str, list[int]] = {}
        self.reused = self.compressed = 0
        self.raw.write(HEADER)

    def member(self, name: str) -> None:
        """A member starts here: cut before it if its name says so and the block is big."""
        if len(self.buffer) >= MIN_BLOCK and zlib.crc32(name.encode()) % CUT_EVERY == 0:
            self._cut(len(self.buffer))

    def write(self, data) -> int:
        self.buffer += data
        while len(self.buffer) > MAX_BLOCK:  # ">": the last block is never empty
            self._cut(MAX_BLOCK)
        return len(data)

    def tell(self) -> int:
        return self.size + len(self.buffer)

    def close(self) -> None:
        if self.pool is None:
            return
        try:
            self._submit(bytes(self.buffer), last=True)
            self.buffer.clear()
            while self.in_flight:
                self._write_next()
            self.raw.write(struct.pack("<II", self.crc, self.size & 0xFFFFFFFF))
        finally:
            self._stop()

    def _cut(self, at: int) -> None:
        block = bytes(self.buffer[:at])
        del self.buffer[:at]
        self._submit(block, last=False)

    def _submit(self, block: bytes, *, last: bool) -> None:
        self.in_flight.append(self.pool.submit(self._compress, block, last))
        self.crc = zlib.crc32(block, self.crc)
        self.size += len(block)
        while len(self.in_flight) > self.limit:
            self._write_next()

    def _compress(self, block: bytes, last: bool) -> tuple[str, bytes, bool]:
        key = _key(block, self.level, last)
        kept = self.previous.get(key) if self.previous else None
        if kept is not None:
            return key, kept, True
        return key, _deflate(block, self.level, last), False

    def _write_next(self) -> None:
        key, data, reused = self.in_flight.popleft().result()
        self.raw.write(data)
        self.index.setdefault(key, [self.offset, len(data)])
        self.offset += len(data)
        self.reused += reused
        self.compressed += not reused

    def _stop(self) -> None:
        self.pool.shutdown(cancel_futures=True)
        self.pool = None
        if self.previous is not None:
            self.previous.close()

    def __enter__(self) -> "ParallelGzipWriter":
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        elif self.pool is not None:
            self._stop()


def write_index(index_path: Path, tarball: Path, final_name: str, level: int,
                blocks: dict[str, list[int]]) -> None:
    """The index of ``tarball`` (to be renamed ``final_name``): what the next build may reuse."""
    st = tarball.stat()  # a rename keeps size and mtime: the index stays valid for final_name
    index_path.write_text(json.dumps(
        {"tarball": final_name, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "level": level,
         "zlib": zlib.ZLIB_RUNTIME_VERSION, "blocks": blocks}, sort_keys=True) + "\n")
