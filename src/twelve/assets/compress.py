"""Pre-compressed siblings: which files get them, and how they are made.

gzip always (standard library), brotli when the optional ``brotli`` package is importable
(``pip install 'twelve[brotli]'``). Output is deterministic: the gzip header carries neither a
timestamp nor a file name, so the same bytes always compress to the same bytes.
"""
from __future__ import annotations

import gzip
import posixpath
from dataclasses import dataclass
from typing import Callable

# Text-like formats that shrink. Images, fonts in woff/woff2, audio, video and archives are
# compressed already and are never given siblings (nor are .gz/.br files themselves).
COMPRESSIBLE = frozenset({
    ".css", ".js", ".mjs", ".cjs", ".map", ".html", ".htm", ".svg", ".json", ".webmanifest",
    ".txt", ".text", ".xml", ".csv", ".md", ".ttf", ".otf", ".eot", ".ico", ".wasm",
})
COMPRESSED_SUFFIXES = (".gz", ".br")


@dataclass(frozen=True)
class Encoding:
    """One content coding: the suffix of its sibling files and the function making them."""

    name: str      # as in Content-Encoding
    suffix: str
    compress: Callable[[bytes], bytes]


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


GZIP = Encoding("gzip", ".gz", _gzip)


def brotli_encoding() -> Encoding | None:
    """Brotli at its best quality, when the package is installed; None otherwise."""
    try:
        import brotli
    except ImportError:
        return None
    return Encoding("br", ".br", lambda data: brotli.compress(data, quality=11))


def encodings(enabled: bool = True) -> tuple[Encoding, ...]:
    if not enabled:
        return ()
    br = brotli_encoding()
    return (GZIP, br) if br else (GZIP,)


def compressible(logical: str) -> bool:
    return posixpath.splitext(logical)[1].lower() in COMPRESSIBLE


def is_compressed_sibling(name: str) -> bool:
    return name.endswith(COMPRESSED_SUFFIXES)
