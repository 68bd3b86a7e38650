"""Overlays: copied verbatim into the release root (and its tarball), later dirs winning file
by file, with modes, symlinks and empty directories kept."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from conftest import EXAMPLES, copy_project, twelve

pytestmark = pytest.mark.slow

OVERLAYS = {  # path → (content, mode); None content: an empty directory
    "rel/overlays/bin/server": ("#!/bin/sh\nexec \"$(dirname \"$0\")/hello\" \"$@\"\n", 0o755),
    "rel/overlays/bin/migrate": ("#!/bin/sh\n", 0o775),
    "rel/overlays/etc/private.conf": ("password file\n", 0o600),
    "rel/overlays/etc/shared.conf": ("from rel/overlays\n", 0o644),
    "rel/overlays/var/empty": (None, 0o755),
    "rel/extra/etc/shared.conf": ("from rel/extra\n", 0o644),
    "rel/extra/etc/extra.txt": ("only in rel/extra\n", 0o644),
    # over files of a locked package and of the interpreter, both hard links into caches
    "rel/extra/lib/flask/py.typed": ("patched by an overlay\n", 0o644),
    "rel/extra/python/lib/python3.11/this.py": ("print('patched by an overlay')\n", 0o644),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The example without its asset step (not needed here), with two overlay dirs."""
    project = copy_project(EXAMPLES / "hello", tmp_path_factory.mktemp("overlays") / "hello")
    pyproject = project / "pyproject.toml"
    text = re.sub(r"(?m)^steps\s*=.*\n", "", pyproject.read_text())
    pyproject.write_text(text.replace("[tool.twelve]\n", "[tool.twelve]\nsteps = [\"assemble\", "
                                      "\"tar\"]\noverlays = [\"rel/overlays\", \"rel/extra\"]\n"))
    for rel, (content, mode) in OVERLAYS.items():
        path = project / rel
        if content is None:
            path.mkdir(parents=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        path.chmod(mode)
    (project / "rel/overlays/etc/current.conf").symlink_to("shared.conf")
    twelve("release", cwd=project, env={"TWELVE_ENV": "prod"})
    return project, project / "_build/prod/rel/hello"


def mode(path: Path) -> int:
    return path.lstat().st_mode & 0o7777


def test_overlays_are_copied_into_the_root_later_ones_winning(built):
    _, release = built
    assert (release / "etc/shared.conf").read_text() == "from rel/extra\n"
    assert (release / "etc/extra.txt").read_text() == "only in rel/extra\n"
    assert (release / "etc/private.conf").read_text() == "password file\n"
    assert os.readlink(release / "etc/current.conf") == "shared.conf"
    assert (release / "var/empty").is_dir() and not list((release / "var/empty").iterdir())
    assert (release / "bin/hello").is_file(), "the launcher is still there"


def test_modes_are_kept_save_group_and_other_write(built):
    _, release = built
    assert mode(release / "bin/server") == 0o755
    assert mode(release / "etc/private.conf") == 0o600
    assert mode(release / "bin/migrate") == 0o755, "0775 is normalised (docs/releases.md)"
    proc = subprocess.run([str(release / "bin/server"), "version"], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin"})
    assert (proc.returncode, proc.stdout) == (0, "hello 0.1.0\n")


def test_overlays_are_in_the_manifest_and_verified(built):
    _, release = built
    files = json.loads((release / "releases/0.1.0/release.json").read_text())["files"]
    assert files["bin/server"]["mode"] == "0755"
    assert files["etc/private.conf"]["mode"] == "0600"
    assert files["etc/current.conf"] == {"link": "shared.conf"}
    assert files["var/empty"] == {"dir": True}, "an empty directory is an entry of its own"
    assert "var" not in files, "a directory with entries under it is not"
    proc = subprocess.run([str(release / "bin/hello"), "verify"], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr


def test_a_removed_empty_overlay_directory_is_missing(built, tmp_path):
    _, release = built
    copy = tmp_path / "hello"
    shutil.copytree(release, copy, symlinks=True)
    (copy / "var/empty").rmdir()
    proc = subprocess.run([str(copy / "bin/hello"), "verify"], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1
    assert "1 missing" in proc.stderr and "  missing   var/empty/\n" in proc.stderr


def test_overlays_are_in_the_tarball_empty_dirs_too(built):
    project, _ = built
    with tarfile.open(project / "_build/prod/hello-0.1.0.tar.gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["var/empty"].isdir()
    assert members["bin/server"].mode == 0o755
    assert members["etc/private.conf"].mode == 0o600
    assert members["etc/current.conf"].issym()


def test_an_overlay_over_a_cached_file_replaces_it_and_leaves_the_cache_alone(built):
    """lib/ and python/ are hard links into twelve's caches, shared by every release: an
    overlay replaces such a file in this release only."""
    _, release = built
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "twelve"
    for rel, cached in (("lib/flask/py.typed", "deps/*/lib/flask/py.typed"),
                        ("python/lib/python3.11/this.py", "python/*/lib/python3.11/this.py")):
        assert "patched by an overlay" in (release / rel).read_text()
        assert (release / rel).stat().st_nlink == 1, f"{rel} is still linked to the cache"
        copies = list(cache.glob(cached))
        assert copies, f"no {cached} in {cache}"
        for copy in copies:
            assert "patched by an overlay" not in copy.read_text(), f"the cache's {copy}"
