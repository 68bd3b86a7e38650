"""``cache_manifest.json`` in Phoenix's format, and ``twelve digest.clean``.

    {"version": 1,
     "latest":  {"css/app.css": "css/app-<md5>.css", ...},
     "digests": {"css/app-<md5>.css": {"logical_path": "css/app.css", "mtime": 63912345678,
                                       "size": 1234, "digest": "<md5>", "sha512": "<base64>"}}}

``latest`` maps each logical path to its current digested path; ``digests`` remembers every
digested file still on disk, old versions included, so clients holding an old page keep getting
its assets until ``digest.clean`` removes them. ``mtime`` is in Phoenix's unit: seconds since
the year 0 (Erlang's gregorian seconds), so manifests are interchangeable with phx.digest's.
"""
from __future__ import annotations

import json
import os
import posixpath
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from twelve.assets.compress import COMPRESSED_SUFFIXES
from twelve.errors import BuildError
from twelve.runtime.static import MANIFEST_NAME
VERSION = 1
TMP_MARK = ".twelve-tmp-"  # in the names of files being written; never taken as input
# Seconds from 0000-01-01 to 1970-01-01 in the proleptic Gregorian calendar (Erlang's epoch).
GREGORIAN_EPOCH_OFFSET = 62_167_219_200

BAD_MANIFEST = "{path} is not a cache manifest twelve can read: {why}"
BAD_MANIFEST_HINT = ("Delete it and run `twelve digest` again: the digested files stay, only "
                     "the record of older versions is lost.")


def now() -> int:
    """The clock, as a manifest ``mtime`` (what digest.clean compares ages with)."""
    return int(time.time()) + GREGORIAN_EPOCH_OFFSET


def build_time(environ) -> int:
    """The ``mtime`` to record for this run: ``SOURCE_DATE_EPOCH`` when set, so that two builds
    of the same sources write the same manifest (and the same release tarball); else the clock."""
    from twelve.builder.archive import source_date_epoch

    epoch = source_date_epoch(environ, default=None)
    return now() if epoch is None else epoch + GREGORIAN_EPOCH_OFFSET


@dataclass
class Manifest:
    latest: dict[str, str] = field(default_factory=dict)
    digests: dict[str, dict] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"version": VERSION, "latest": dict(sorted(self.latest.items())),
                "digests": {k: self.digests[k] for k in sorted(self.digests)}}


def load(directory: Path) -> Manifest:
    """The manifest in ``directory``; an empty one when there is none yet."""
    path = directory / MANIFEST_NAME
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return Manifest()
    except (OSError, ValueError) as e:
        raise BuildError(BAD_MANIFEST.format(path=path, why=e), hint=BAD_MANIFEST_HINT) from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise BuildError(BAD_MANIFEST.format(path=path, why="no \"version\": 1"),
                         hint=BAD_MANIFEST_HINT)
    latest, digests = data.get("latest", {}), data.get("digests", {})
    if not isinstance(latest, dict) or not isinstance(digests, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("logical_path"), str)
            and isinstance(v.get("mtime"), int) for v in digests.values()):
        raise BuildError(BAD_MANIFEST.format(path=path, why="malformed latest or digests"),
                         hint=BAD_MANIFEST_HINT)
    unsafe = [p for p in (*digests, *latest.values()) if not _inside(p)]
    if unsafe:
        # clean deletes what the manifest names: never anything outside the directory.
        raise BuildError(BAD_MANIFEST.format(path=path, why=f"{unsafe[0]!r} is outside it"),
                         hint=BAD_MANIFEST_HINT)
    return Manifest(latest=dict(latest), digests=dict(digests))


def _inside(relative) -> bool:
    return (isinstance(relative, str) and relative != "" and not relative.startswith("/")
            and posixpath.normpath(relative) == relative and not relative.startswith(".."))


def save(directory: Path, manifest: Manifest) -> Path:
    path = directory / MANIFEST_NAME
    write_atomically(path, (json.dumps(manifest.to_json(), indent=2) + "\n").encode())
    return path


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a half-written one."""
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{threading.get_ident()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Cleaned:
    removed: tuple[str, ...]   # digested paths dropped from the manifest
    files: int                 # files deleted from disk, compressed siblings included


def clean(directory: Path, *, keep: int, age: int, current: int | None = None) -> Cleaned:
    """Remove digested files no longer needed: for each logical path the latest version always
    stays, and so do the ``keep`` newest older versions and every version younger than ``age``
    seconds; the others are deleted with their compressed siblings and leave the manifest."""
    manifest = load(directory)
    current = now() if current is None else current
    latest = set(manifest.latest.values())
    versions: dict[str, list[tuple[int, str]]] = {}
    for digested, entry in manifest.digests.items():
        if digested not in latest:
            versions.setdefault(entry["logical_path"], []).append((entry["mtime"], digested))
    doomed = []
    for olds in versions.values():
        for index, (mtime, digested) in enumerate(sorted(olds, reverse=True)):
            if index >= keep and mtime < current - age:
                doomed.append(digested)
    files = sum(_remove_with_siblings(directory / d) for d in doomed)
    for digested in doomed:
        del manifest.digests[digested]
    if doomed:
        save(directory, manifest)
    return Cleaned(tuple(sorted(doomed)), files)


def clean_all(directory: Path) -> Cleaned:
    """Remove every digested file, every compressed sibling of a digested logical path and the
    manifest itself; the undigested originals stay."""
    manifest = load(directory)
    digested = sorted(set(manifest.digests) | set(manifest.latest.values()))
    logical = {entry["logical_path"] for entry in manifest.digests.values()} | set(manifest.latest)
    files = sum(_remove_with_siblings(directory / d) for d in digested)
    for path in sorted(logical):
        files += sum(_remove(directory / (path + suffix)) for suffix in COMPRESSED_SUFFIXES)
    files += _remove(directory / MANIFEST_NAME)
    return Cleaned(tuple(digested), files)


def _remove_with_siblings(path: Path) -> int:
    return _remove(path) + sum(_remove(Path(f"{path}{s}")) for s in COMPRESSED_SUFFIXES)


def _remove(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1
