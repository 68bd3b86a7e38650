"""The tar step's writer and the normalisations that make a release reproducible."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from twelve.builder import archive
from twelve.builder.release import Release
from twelve.errors import BuildError


def make_release(tmp_path: Path, tree: str = "a") -> Release:
    root = tmp_path / tree / "_build" / "prod" / "rel" / "app"
    staging = root.parent / ".app.staging-1"
    return Release(project=None, name="app", version="1.0", env="prod", root=root,
                   staging=staging)


def make_tree(staging: Path, order: list[str], mode_bits: int = 0) -> None:
    """A small release; ``order`` decides which file is created first, ``mode_bits`` adds
    group/other write as a sloppy umask would."""
    files = {"bin/app": (b"#!/bin/sh\n", 0o755), "lib/m.py": (b"x = 1\n", 0o644),
             "releases/1.0/release.json": (b"{}\n", 0o644), "releases/CURRENT": (b"1.0\n", 0o644),
             "etc/token": (b"token\n", 0o400), "releases/0.9/old.txt": (b"old\n", 0o644),
             "tmp/app.pid": (b"42\n", 0o644), "secret.conf": (b"private\n", 0o600)}
    for name in order:
        data, mode = files[name]
        path = staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode | (mode_bits if mode & 0o044 else 0))
    (staging / "var" / "empty").mkdir(parents=True)
    (staging / "lib" / "link.py").symlink_to("m.py")


FILES = ["bin/app", "lib/m.py", "releases/1.0/release.json", "releases/CURRENT",
         "etc/token", "releases/0.9/old.txt", "tmp/app.pid", "secret.conf"]


def build_tarball(tmp_path: Path, tree: str, order: list[str], mode_bits: int = 0,
                  epoch: int = 1_700_000_000) -> bytes:
    release = make_release(tmp_path, tree)
    make_tree(release.staging, order, mode_bits)
    archive.normalise_modes(release.staging)
    pending = archive.write_tarball(release, epoch)
    assert archive.publish_tarball(release) == archive.tarball_path(release)
    assert not pending.exists()
    return archive.tarball_path(release).read_bytes()


def test_same_tree_built_differently_gives_the_same_bytes(tmp_path):
    first = build_tarball(tmp_path, "a", FILES)
    os.utime(tmp_path / "a", (0, 0))
    second = build_tarball(tmp_path, "b", list(reversed(FILES)), mode_bits=0o022)
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    assert first != build_tarball(tmp_path, "c", FILES, epoch=1_700_000_001)


def test_tarball_path_is_beside_rel_as_in_mix(tmp_path):
    release = make_release(tmp_path)
    assert archive.tarball_path(release) == tmp_path / "a" / "_build" / "prod" / "app-1.0.tar.gz"


def test_entries_are_sorted_normalised_and_only_this_release(tmp_path):
    data = build_tarball(tmp_path, "a", FILES)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == ["bin", "bin/app", "etc", "etc/token", "lib", "lib/link.py", "lib/m.py",
                     "releases", "releases/1.0", "releases/1.0/release.json",
                     "releases/CURRENT", "secret.conf", "var", "var/empty"]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == \
        {(0, 0, "", "", 1_700_000_000)}
    modes = {m.name: m.mode for m in members}
    assert (modes["bin/app"], modes["lib/m.py"], modes["etc/token"],
            modes["secret.conf"], modes["var/empty"]) == (0o755, 0o644, 0o400, 0o600, 0o755)
    link = next(m for m in members if m.name == "lib/link.py")
    assert link.issym() and link.linkname == "m.py"


def test_gzip_header_has_no_name_and_no_time(tmp_path):
    data = build_tarball(tmp_path, "a", FILES)
    assert data[:4] == b"\x1f\x8b\x08\x00", "deflate, no FNAME flag"
    assert data[4:8] == b"\x00\x00\x00\x00", "mtime 0"
    assert gzip.decompress(data)[:3] == b"bin"


def test_a_failed_build_leaves_the_previous_tarball(tmp_path):
    release = make_release(tmp_path)
    make_tree(release.staging, FILES)
    final = archive.tarball_path(release)
    final.parent.mkdir(parents=True, exist_ok=True)
    final.write_bytes(b"previous")
    archive.write_tarball(release, 0)
    archive.discard_pending_tarball(release)
    assert final.read_bytes() == b"previous"
    assert archive.publish_tarball(release) is None
    assert [p.name for p in final.parent.iterdir() if p.is_file()] == [final.name]


def test_pending_tarballs_of_killed_builds_are_removed(tmp_path):
    release = make_release(tmp_path)
    make_tree(release.staging, FILES)
    final = archive.tarball_path(release)
    final.parent.mkdir(parents=True, exist_ok=True)
    stale = final.with_name(f".{final.name}.staging-999999999")
    stale.write_bytes(b"half")
    archive.write_tarball(release, 0)
    assert not stale.exists()


@pytest.mark.parametrize("value, expected", [(None, archive.DEFAULT_EPOCH),
                                             ("", archive.DEFAULT_EPOCH),
                                             ("1700000000", 1700000000), (" 0 ", 0)])
def test_source_date_epoch(value, expected):
    environ = {} if value is None else {"SOURCE_DATE_EPOCH": value}
    assert archive.source_date_epoch(environ) == expected


@pytest.mark.parametrize("value", ["yesterday", "-1", "1.5"])
def test_a_bad_source_date_epoch_is_one_clear_error(value):
    with pytest.raises(BuildError) as info:
        archive.source_date_epoch({"SOURCE_DATE_EPOCH": value})
    assert info.value.message == f"SOURCE_DATE_EPOCH={value!r} is not a Unix timestamp"
    assert "git log -1 --format=%ct" in info.value.hint


def test_normalise_lib_drops_install_leftovers(tmp_path):
    lib = tmp_path / "lib"
    info = lib / "app-1.0.dist-info"
    info.mkdir(parents=True)
    (lib / "app").mkdir()
    (lib / "app" / "__init__.py").write_text("")
    (lib / ".lock").write_text("")
    for name in ("METADATA", "direct_url.json", "uv_cache.json"):
        (info / name).write_text("{}")
    (info / "RECORD").write_text(
        "app/__init__.py,sha256=abc,0\n"
        "bin/app,sha256=depends-on-the-build-path,99\n"
        "app-1.0.dist-info/direct_url.json,sha256=x,2\n"
        "app-1.0.dist-info/METADATA,sha256=y,2\n"
        "app-1.0.dist-info/RECORD,,\n")
    archive.normalise_lib(lib)
    assert sorted(p.name for p in info.iterdir()) == ["METADATA", "RECORD"]
    assert not (lib / ".lock").exists()
    assert (info / "RECORD").read_text() == ("app/__init__.py,sha256=abc,0\n"
                                             "app-1.0.dist-info/METADATA,sha256=y,2\n"
                                             "app-1.0.dist-info/RECORD,,\n")


def test_normalise_modes_keeps_exec_and_private_bits(tmp_path):
    for name, mode in {"a": 0o775, "b": 0o666, "c": 0o600, "d": 0o4755}.items():
        (tmp_path / name).write_text(name)
        os.chmod(tmp_path / name, mode)
    (tmp_path / "releases").mkdir(mode=0o777)
    os.chmod(tmp_path / "releases", 0o777)
    (tmp_path / "releases" / "token").write_text("private")
    os.chmod(tmp_path / "releases" / "token", 0o400)
    archive.normalise_modes(tmp_path)
    modes = {p.name: p.stat().st_mode & 0o7777 for p in tmp_path.rglob("*")}
    assert modes == {"a": 0o755, "b": 0o644, "c": 0o600, "d": 0o755, "releases": 0o755,
                     "token": 0o400}
