"""A rebuild reuses what earlier builds made (twelve.builder.layers) and still gives exactly the
tree a build that reused nothing of twelve's gives: every file's path, mode and sha256, every
symlink's target, every directory.

"Reused nothing": a fresh twelve cache. Only the prepared interpreter is shared (it has its own
reproducibility test in test_interpreter_relocation.py, and preparing it is most of a cold
build), and uv's cache, so no download is needed.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import os
import shutil
import stat
from pathlib import Path

import pytest

from conftest import EXAMPLES, copy_project, twelve

pytestmark = pytest.mark.slow

EPOCH = "1700000000"
REUSED = "(unchanged since it was built)"


def tree(root: Path) -> dict[str, tuple]:
    """path → ("dir", mode) | ("link", target) | ("file", mode, sha256), for the whole tree."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                found[rel] = ("file", stat.S_IMODE(st.st_mode),
                              hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def differences(a: dict, b: dict) -> list[str]:
    return [f"{rel}: {a.get(rel)} != {b.get(rel)}"
            for rel in sorted(set(a) | set(b)) if a.get(rel) != b.get(rel)][:20]


def user_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


@pytest.fixture
def fresh_cache(tmp_path):
    """A twelve cache with nothing in it but the prepared interpreters (a link to the
    user's), and uv's own cache: env for twelve()."""
    made = iter(range(100))

    def make() -> dict:
        cache = tmp_path / f"cache-{next(made)}"
        (cache / "twelve").mkdir(parents=True)
        (user_cache() / "twelve" / "python").mkdir(parents=True, exist_ok=True)
        (cache / "twelve" / "python").symlink_to(user_cache() / "twelve" / "python")
        uv_cache = os.environ.get("UV_CACHE_DIR") or str(user_cache() / "uv")
        return {"XDG_CACHE_HOME": str(cache), "UV_CACHE_DIR": uv_cache,
                "TWELVE_ENV": "prod", "SOURCE_DATE_EPOCH": EPOCH}
    return make


@pytest.fixture
def project(tmp_path) -> Path:
    """examples/hello with the assemble step only (its assets step needs node)."""
    root = copy_project(EXAMPLES / "hello", tmp_path / "hello")
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('steps = ["assets.deploy", "assemble"]',
                                      'steps = ["assemble"]'))
    assert 'steps = ["assemble"]' in pyproject.read_text()
    return root


def test_a_rebuild_is_identical_to_a_build_that_reused_nothing(project, fresh_cache):
    release = project / "_build" / "prod" / "rel" / "hello"
    env = fresh_cache()
    first = twelve("release", "--overwrite", cwd=project, env=env)
    assert REUSED not in first.stdout + first.stderr
    clean = tree(release)

    warm = twelve("release", "--overwrite", cwd=project, env=env)
    assert REUSED in warm.stdout + warm.stderr, "the warm rebuild reused the app's entry"
    assert differences(tree(release), clean) == []

    web = project / "src" / "hello" / "web.py"
    web.write_text(web.read_text() + "\n# an edit: the incremental rebuild's one change\n")
    incremental = twelve("release", "--overwrite", cwd=project, env=env)
    assert REUSED not in incremental.stdout + incremental.stderr
    assert "installing" not in incremental.stdout.replace("installing hello", ""), \
        "only the app's wheel is built again, the locked packages are linked"
    edited = tree(release)
    assert edited["lib/hello/web.py"] != clean["lib/hello/web.py"]

    shutil.rmtree(project / "_build")
    twelve("release", "--overwrite", cwd=project, env=fresh_cache())
    assert differences(tree(release), edited) == []


def test_the_locked_packages_are_linked_from_uvs_cache_which_stays_as_it_was(project,
                                                                              fresh_cache):
    """uv installs the locked packages as hard links to its cache (deps.install_requirements):
    what twelve then does to them (compile, strip, prune RECORD, normalise) must never write
    into a file in place: every file still linked has the bytes its wheel's RECORD says."""
    env = fresh_cache()
    twelve("release", "--overwrite", cwd=project, env=env)
    shutil.rmtree(project / "_build")  # only the dependency cache and uv's link them now
    entries = Path(env["XDG_CACHE_HOME"]) / "twelve" / "deps"
    (lib,) = [p / "lib" for p in entries.iterdir() if not p.name.startswith(".")]
    linked = 0
    for record in lib.glob("*.dist-info/RECORD"):
        for row in csv.reader(record.read_text().splitlines()):
            path = lib / row[0]
            if len(row) < 2 or not row[1].startswith("sha256=") or not path.is_file() \
                    or path.stat().st_nlink < 2:
                continue
            linked += 1
            digest = hashlib.sha256(path.read_bytes()).digest()
            expected = base64.urlsafe_b64decode(row[1].removeprefix("sha256=") + "==")
            assert digest == expected, f"{row[0]} was written in place"
    assert linked > 50, "the locked packages were copied, not linked from uv's cache"
