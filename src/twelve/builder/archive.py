"""The release as an artifact: the ``tar`` step and what makes its bytes reproducible.

Owns ``_build/<env>/NAME-VSN.tar.gz`` (mix: ``make_tar``), ``SOURCE_DATE_EPOCH``, and the two
normalisations of the release directory that reproducibility needs at the source, before the
manifest records the files: installers' leftovers in ``lib/`` (``normalise_lib``) and file
modes (``normalise_modes``).

The tarball holds this release only: everything of the release root except ``tmp/`` and the
other versions under ``releases/`` (so bin/, lib/, python/, releases/VSN and CURRENT, the
overlays, empty directories too; no secret: the control cookie is made by the node at boot), entries relative to the root (extract it with
``tar -xzf NAME-VSN.tar.gz -C /opt/NAME``). Entries are sorted, a directory before its
contents; every mtime is ``SOURCE_DATE_EPOCH``; owner and group are 0 with no names; the gzip
header has no file name and mtime 0. The gzip stream is deflated in parallel, in blocks cut by
content, and blocks the previous tarball already holds are copied from it (its index,
``_build/<env>/.NAME.tar-index.json``): see ``parallel_gzip``; the bytes are the same either
way. The tarball is written beside its final name and renamed
into place only once the release itself has been swapped in (``publish_tarball``), so a failed
build leaves the previous tarball as it was too.
"""
from __future__ import annotations

import csv
import os
import stat
import tarfile
from pathlib import Path

from twelve.builder.parallel_gzip import ParallelGzipWriter, Previous, write_index
from twelve.builder.release import Release
from twelve.errors import BuildError
from twelve.runtime.process.pids import alive

# When SOURCE_DATE_EPOCH is unset: 1980-01-01T00:00:00Z, the earliest time a zip (a wheel) can
# hold, and late enough that tar does not warn about an "implausibly old time stamp".
DEFAULT_EPOCH = 315532800
# Group and other lose write permission, setuid/setgid/sticky bits go; the rest stays, so
# executables stay executable and private files (0600, 0400) stay private.
MODE_MASK = 0o755
GZIP_LEVEL = 6  # gzip's default: level 9 takes 4x as long for 1% less, level 1 is 14% larger
# What installers write about one particular install: the URL of the temporary wheel
# (PEP 610) and uv's cache timestamp; uv's lock file of a --target install (mode 0666).
INSTALL_LEFTOVERS = ("direct_url.json", "uv_cache.json")
BAD_EPOCH = "SOURCE_DATE_EPOCH={value!r} is not a Unix timestamp"
BAD_EPOCH_HINT = ("Set it to a whole number of seconds since 1970, e.g. "
                  "SOURCE_DATE_EPOCH=$(git log -1 --format=%ct), or unset it.")
NOT_ARCHIVABLE = "cannot put {path} into the tarball: it is not a file, directory or symlink"


def source_date_epoch(environ, default: int | None = DEFAULT_EPOCH) -> int | None:
    """The build's timestamp: ``SOURCE_DATE_EPOCH`` if set, else ``default``."""
    raw = (environ.get("SOURCE_DATE_EPOCH") or "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise BuildError(BAD_EPOCH.format(value=raw), hint=BAD_EPOCH_HINT)
    return int(raw)


def tarball_path(release: Release) -> Path:
    """``_build/<env>/NAME-VSN.tar.gz``: two levels above the release root, as in mix."""
    return release.root.parent.parent / f"{release.name}-{release.version}.tar.gz"


def index_path(release: Release) -> Path:
    """What the last tarball of this release name holds, block by block (parallel_gzip)."""
    return tarball_path(release).with_name(f".{release.name}.tar-index.json")


def pending_path(release: Release) -> Path:
    final = tarball_path(release)
    return final.with_name(f".{final.name}.staging-{os.getpid()}")


def _pending_index(release: Release) -> Path:
    return pending_path(release).with_name(pending_path(release).name + ".index")


def write_tarball(release: Release, epoch: int) -> Path:
    """The ``tar`` step: the staging release into the pending tarball; returns its path."""
    pending = pending_path(release)
    pending.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_pending(release)
    previous = Previous.load(index_path(release), GZIP_LEVEL)
    with pending.open("wb") as raw, \
            ParallelGzipWriter(raw, GZIP_LEVEL, previous) as compressed, \
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in tar_entries(release.staging, release.version):
            compressed.member(name)
            _add(tar, name, path, epoch)
    write_index(_pending_index(release), pending, tarball_path(release).name, GZIP_LEVEL,
                compressed.index)
    return pending


def publish_tarball(release: Release) -> Path | None:
    """Rename the pending tarball into place, if the build wrote one, and then its index."""
    pending = pending_path(release)
    if not pending.exists():
        return None
    final = tarball_path(release)
    os.replace(pending, final)
    os.replace(_pending_index(release), index_path(release))
    return final


def discard_pending_tarball(release: Release) -> None:
    pending_path(release).unlink(missing_ok=True)
    _pending_index(release).unlink(missing_ok=True)


def tar_entries(root: Path, version: str):
    """(name, path) of everything the tarball holds, sorted, each directory before its
    contents: all of ``root`` but ``tmp/`` and the other versions under ``releases/``."""
    def walk(directory: str, prefix: str):
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            name = prefix + entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            if name == "tmp" or (is_dir and prefix == "releases/" and entry.name != version):
                continue
            yield name, Path(entry.path)
            if is_dir:
                yield from walk(entry.path, name + "/")
    yield from walk(os.fspath(root), "")


def _add(tar: tarfile.TarFile, name: str, path: Path, epoch: int) -> None:
    st = path.lstat()
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "", ""
    info.mode = stat.S_IMODE(st.st_mode) & MODE_MASK
    if stat.S_ISLNK(st.st_mode):
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
        tar.addfile(info)
    elif stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif stat.S_ISREG(st.st_mode):
        info.size = st.st_size
        with path.open("rb") as f:
            tar.addfile(info, f)
    else:
        raise BuildError(NOT_ARCHIVABLE.format(path=name))


def _remove_stale_pending(release: Release) -> None:
    """Pending tarballs of killed builds (their pid is gone)."""
    final = tarball_path(release)
    for path in final.parent.glob(f".{final.name}.staging-*"):
        pid = path.name.rsplit("-", 1)[-1].removesuffix(".index")
        if pid.isdigit() and not alive(int(pid)):
            path.unlink(missing_ok=True)


def normalise_lib(lib: Path) -> None:
    """Drop what the installers recorded about this particular install, so that two builds
    of the same lock give the same lib/: ``INSTALL_LEFTOVERS`` in every dist-info, uv's
    ``lib/.lock``, and RECORD rows of files that are not shipped (the console scripts, whose
    shebang named the build's interpreter)."""
    (lib / ".lock").unlink(missing_ok=True)
    for dist_info in sorted(lib.glob("*.dist-info")):
        for name in INSTALL_LEFTOVERS:
            (dist_info / name).unlink(missing_ok=True)
        record = dist_info / "RECORD"
        if record.is_file():
            _prune_record(record, lib)


def _prune_record(record: Path, lib: Path) -> None:
    lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines
            if not (row := next(csv.reader([line]), None)) or (lib / row[0]).exists()]
    if kept != lines:  # by rename, never in place: the file may be linked out of a cache
        scratch = record.with_name(record.name + ".twelve-tmp")
        scratch.write_text("".join(kept), encoding="utf-8")
        os.replace(scratch, record)


def normalise_modes(root: Path) -> None:
    """Apply ``MODE_MASK`` to every file and directory under ``root`` (the umask of the build
    must not show in the release)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            mode = stat.S_IMODE(st.st_mode)
            if not stat.S_ISLNK(st.st_mode) and mode & ~MODE_MASK:
                os.chmod(path, mode & MODE_MASK)
