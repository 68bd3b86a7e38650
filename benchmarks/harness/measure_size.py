"""Artifact sizes: bytes of regular files (symlinks not followed, so a venv does not count the
interpreter it links to), file count, and the size of a ``.tar.gz`` of the artifact — twelve's
own from its ``tar`` step, the others written here with the same gzip level (6) — with and
without each tool's strip option where it has one."""
from __future__ import annotations

import tarfile
import time
from pathlib import Path

from harness.stats import Sample
from harness.workspace import tree_size

GZIP_LEVEL = 6


def archive(path: Path, dest: Path) -> tuple[int, float]:
    """tar.gz ``path`` into ``dest``; (its size, the seconds it took). Removed afterwards."""
    started = time.perf_counter()
    with tarfile.open(dest, "w:gz", compresslevel=GZIP_LEVEL) as tar:
        tar.add(path, arcname=path.name)
    seconds = time.perf_counter() - started
    size = dest.stat().st_size
    dest.unlink()
    return size, seconds


def py_sources(lib: Path) -> int:
    return sum(1 for _ in lib.rglob("*.py"))


def row(label: str, path: Path, tar_bytes: int, *, needs_python: bool, note: str = "",
        tar_seconds: float | None = None) -> dict:
    size, files = tree_size(path)
    return {"label": label, "bytes": size, "files": files, "targz": tar_bytes,
            "needs_python": needs_python, "note": note, "tar_seconds": tar_seconds}


def twelve_rows(name: str, tar_app: Path, nostrip_app: Path | None,
                scratch: Path, optimize_app: Path | None = None) -> list[dict]:
    """twelve as configured by default (strip = true), with its own tar step; the same
    app with ``strip = false``, every source shipped; and with ``optimize = 2`` (the locked
    packages compiled as python -OO does)."""
    root = tar_app / "_build" / "prod" / "rel" / name
    tarball = tar_app / "_build" / "prod" / f"{name}-0.1.0.tar.gz"
    rows = [row("twelve", root, tarball.stat().st_size, needs_python=False,
                note=f"interpreter included; {py_sources(root / 'lib')} .py files in lib/ "
                     "(the app's and twelve's)")]
    if nostrip_app is not None:
        full = nostrip_app / "_build" / "prod" / "rel" / name
        rows.append(peer_row("twelve (strip = false)", full, scratch, needs_python=False,
                             note=f"strip = false: {py_sources(full / 'lib')} .py files in "
                                  "lib/, the standard library as files"))
    if optimize_app is not None:
        rows.append(peer_row("twelve (optimize = 2)", optimize_app / "_build" / "prod" / "rel"
                             / name, scratch, needs_python=False,
                             note="the locked packages without docstrings and asserts"))
    return rows


def peer_row(label: str, path: Path, scratch: Path, *, needs_python: bool,
             note: str = "") -> dict:
    size, seconds = archive(path, scratch / (path.name + ".tar.gz"))
    return row(label, path, size, needs_python=needs_python, note=note, tar_seconds=seconds)


def as_samples(rows: list[dict]) -> dict[str, dict[str, Sample]]:
    return {r["label"]: {"MB": Sample("MB", [r["bytes"] / 1e6]),
                         "targz_MB": Sample("MB", [r["targz"] / 1e6])} for r in rows}
