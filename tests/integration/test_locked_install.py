"""The locked packages install the same files from the lock's pylock.toml (wheel URLs and
hashes, no index request) as from its requirements export, and a tampered hash in either
fails the install: real uv, real wheels (from uv's cache once a build has run)."""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, copy_project
from twelve.builder import deps
from twelve.errors import BuildError
from twelve.project import load_project

pytestmark = pytest.mark.slow


def files(root: Path) -> dict[str, str]:
    found = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            found[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    project = load_project(copy_project(EXAMPLES / "hello", tmp_path_factory.mktemp("p") / "hello"))
    work = tmp_path_factory.mktemp("work")
    check = deps.lock_requirements(project, Path(sys.executable), work / "requirements.txt")
    assert check is not None
    check.finish()
    return work


def test_the_pylock_export_installs_what_the_requirements_install(exported, tmp_path):
    pylock = exported / deps.PYLOCK
    assert pylock.is_file() and "files.pythonhosted.org" in pylock.read_text()
    assert "name = \"twelve\"" not in pylock.read_text()   # deps.EXCLUDED, as in the export
    via_pylock = tmp_path / "via-pylock"
    deps.install_requirements(exported / "requirements.txt", via_pylock, Path(sys.executable))

    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "requirements.txt").write_text((exported / "requirements.txt").read_text())
    via_index = tmp_path / "via-index"
    deps.install_requirements(alone / "requirements.txt", via_index, Path(sys.executable))

    installed = files(via_pylock)
    assert any(rel.startswith("flask/") for rel in installed)
    assert installed == files(via_index)


def test_a_wrong_hash_in_the_pylock_fails_the_install(exported, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "requirements.txt").write_text((exported / "requirements.txt").read_text())
    text = (exported / deps.PYLOCK).read_text()
    start = text.index('wheels = [{ url = "', text.index('name = "flask"'))
    digest_at = text.index('sha256 = "', start) + len('sha256 = "')
    digest = text[digest_at:digest_at + 64]
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    (work / deps.PYLOCK).write_text(text[:digest_at] + wrong + text[digest_at + 64:])
    with pytest.raises(BuildError, match="installing the locked dependencies failed"):
        deps.install_requirements(work / "requirements.txt", tmp_path / "lib", Path(sys.executable))
