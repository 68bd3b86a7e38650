"""A content-addressed cache of installed dependencies, and trees linked out of caches.

Installing, normalising, byte-compiling and checking a release's locked dependencies gives the
same ``lib/`` every time for the same pinned requirements, interpreter ABI and ``strip``; so it
is done once, into ``$XDG_CACHE_HOME/twelve/deps/<key>/lib``, and every later build links that
tree into its staging directory (hard links: no copy, no recompilation, no re-hashing).

Safety of the links: a cache entry is complete before it is visible (built in a temporary
sibling, renamed into place) and never written again. Every step that runs after the link in a
build only adds files or replaces them by rename, never writes into one in place, so a release
and the cache share bytes that neither changes. ``bin/NAME verify`` compares a release with its
own manifest, so a file someone edited in place shows there. When the cache is on another file
system, files are copied instead.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable

from twelve.builder import archive, assemble, deps, elf
from twelve.runtime.process.pids import alive

FORMAT = 4          # bump when what an entry holds changes (4: strip leaves out tests/ and
                    # stubs, compiles without column tables, spares keep_sources)
HASHES = "files.json"

Log = Callable[[str], None]


def entry_key(pinned: str, python_id: str, strip: bool, keep: tuple[str, ...] = (),
              optimize: int = 0) -> str:
    material = {"format": FORMAT, "requirements": pinned, "python": python_id,
                "strip": strip, "keep_sources": list(keep)}
    if optimize:   # absent at 0: the entries made before the setting stay valid
        material["optimize"] = optimize
    text = json.dumps(material, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def prepared_lib(cache_root: Path, requirements: Path, python: Path, python_id: str,
                 strip: bool, log: Log, keep: tuple[str, ...] = (), optimize: int = 0) -> Path:
    """The cache entry (a directory holding ``lib/``) for these requirements; built once."""
    pinned = requirements.read_text()
    entry = cache_root / entry_key(pinned, python_id, strip, keep, optimize)
    if (entry / HASHES).is_file():
        return entry
    cache_root.mkdir(parents=True, exist_ok=True)
    remove_abandoned(cache_root)
    stage = cache_root / f".tmp-{os.getpid()}-{entry.name}"
    shutil.rmtree(stage, ignore_errors=True)
    try:
        log(f"* installing {len(deps.parse_requirements(pinned))} locked packages "
            "(cached for later builds)")
        _build_entry(stage, requirements, python, strip, log, keep, optimize)
        try:
            os.rename(stage, entry)
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            shutil.rmtree(stage, ignore_errors=True)  # a concurrent build made it first
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return entry


def _build_entry(stage: Path, requirements: Path, python: Path, strip: bool, log: Log,
                 keep: tuple[str, ...] = (), optimize: int = 0) -> None:
    lib = stage / "lib"
    lib.mkdir(parents=True)
    deps.install_requirements(requirements, lib, python)
    deps.remove_scripts(lib)
    if strip:
        kept = deps.kept_files(lib, keep)
        deps.remove_unused(lib, kept)
        complaints = deps.compile_stripped(stage, python, kept, optimize)
        # Debug sections of compiled extensions serve debuggers, not servers; dropped only
        # where what the loader maps stays the same (elf.strip_debug_info).
        elf.strip_debug_info([p for p in elf.elf_files(lib) if p.resolve() not in kept], log)
    else:
        complaints = assemble.byte_compile(stage, str(python))
    if complaints:
        log("  warning: some files could not be byte-compiled (they stay as source):\n"
            + "\n".join("    " + line for line in complaints.splitlines()[:10]))
    archive.normalise_lib(lib)  # after strip: RECORD rows of removed sources go too
    elf.check_dependency_libraries(lib)
    archive.normalise_modes(stage)
    write_hashes(stage)


def write_hashes(tree: Path) -> None:
    """``files.json``: the sha256 of every regular file of ``tree``, computed once."""
    hashes = {}
    for dirpath, _, filenames in os.walk(tree):
        for name in filenames:
            path = Path(dirpath, name)
            if not path.is_symlink() and not name.startswith(f".{HASHES}"):
                hashes[path.relative_to(tree).as_posix()] = assemble.sha256_file(path)
    scratch = tree / f".{HASHES}.{os.getpid()}"
    try:
        scratch.write_text(json.dumps(hashes, sort_keys=True))
        os.replace(scratch, tree / HASHES)  # whole or not at all: a concurrent build agrees
    finally:
        scratch.unlink(missing_ok=True)  # a full disk must not leave it to be linked


def known_hashes(tree: Path) -> dict[tuple[int, int], str]:
    """(device, inode) → sha256 for the files of a cache tree: a file linked out of it has
    the same inode, so its hash need not be computed again."""
    try:
        hashes = json.loads((tree / HASHES).read_text())
    except (OSError, ValueError):
        return {}
    known = {}
    for rel, digest in hashes.items():
        try:
            st = os.lstat(tree / rel)
        except OSError:
            continue
        known[(st.st_dev, st.st_ino)] = digest
    return known


def link_tree(source: Path, dest: Path, *, skip: frozenset[str] = frozenset(),
              replace: bool = False, copy: bool = False) -> None:
    """Recreate ``source`` at ``dest`` with hard links to its files (copies across file
    systems, or with ``copy``); directories and symlinks are made anew. ``skip``: top-level
    names left out. ``replace``: a file already at ``dest`` is unlinked first (as an install
    overwrites it), never written into: it may be linked from another cache."""
    link = _copy if copy else os.link
    for dirpath, dirnames, filenames in os.walk(source):
        rel = os.path.relpath(dirpath, source)
        if rel == ".":
            dirnames[:] = [name for name in dirnames if name not in skip]  # nor walked into
        target = dest if rel == "." else dest / rel
        target.mkdir(parents=True, exist_ok=True)
        shutil.copymode(dirpath, target)
        for name in dirnames + filenames:
            if rel == "." and (name in skip or name.startswith(f".{HASHES}.")):
                continue
            src = os.path.join(dirpath, name)
            if replace and name in filenames and os.path.lexists(target / name):
                os.unlink(target / name)
            if os.path.islink(src):
                os.symlink(os.readlink(src), target / name)
            elif name in filenames:
                try:
                    link(src, target / name)
                except OSError as e:
                    if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                        raise
                    link = _copy  # another file system: copy from now on
                    _copy(src, target / name)
        dirnames[:] = [d for d in dirnames if not (rel == "." and d in skip)
                       and not os.path.islink(os.path.join(dirpath, d))]


def _copy(src, dst) -> None:
    shutil.copy2(src, dst)


def remove_abandoned(cache_root: Path) -> None:
    """Remove the temporary ``.tmp-PID-…`` directories of builds whose process is gone."""
    for entry in cache_root.glob(".tmp-*"):
        pid = entry.name.split("-")[1]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
