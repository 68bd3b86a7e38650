"""`bin/NAME verify`: passes on a fresh release, names every modified, missing or extra file."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import release_env

pytestmark = pytest.mark.slow


def verify(release: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(release / "bin" / "hello"), "verify", *args],
                          env=env or {"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def release(hello_release, tmp_path) -> Path:
    """A private copy of the session's release, to break."""
    copy = tmp_path / "hello"
    shutil.copytree(hello_release, copy, symlinks=True)
    return copy


def test_a_fresh_release_verifies(hello_release):
    files = json.loads((hello_release / "releases/0.1.0/release.json").read_text())["files"]
    proc = verify(hello_release)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == (f"ok: hello 0.1.0: all {len(files)} files match "
                           "releases/0.1.0/release.json\n")


def test_running_the_release_changes_nothing_it_verifies(release, tmp_path):
    env = release_env(tmp_path)
    ran = subprocess.run([str(release / "bin/hello"), "eval", "import hello.web, flask"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert verify(release, env=env).returncode == 0


def test_one_changed_byte_of_a_py_file_is_named(release):
    web = release / "lib/hello/web.py"
    data = bytearray(web.read_bytes())
    data[0] ^= 0x01
    web.write_bytes(bytes(data))
    proc = verify(release)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: hello 0.1.0 does not match "
                                  "releases/0.1.0/release.json: 1 modified\n")
    assert "  modified  lib/hello/web.py (content differs)\n" in proc.stderr
    assert "Install it again from its artifact (hello-0.1.0.tar.gz" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_added_removed_and_chmodded_files_are_named(release):
    (release / "lib/hello/backdoor.py").write_text("import os\n")
    (release / "lib/hello/db.py").unlink()
    (release / "bin/hello").chmod(0o777)
    proc = verify(release)
    assert proc.returncode == 1
    assert "1 modified, 1 missing, 1 extra" in proc.stderr
    assert "  modified  bin/hello (mode 0777, expected 0755)" in proc.stderr
    assert "  missing   lib/hello/db.py" in proc.stderr
    assert "  extra     lib/hello/backdoor.py" in proc.stderr


def test_a_directory_the_app_creates_in_the_release_is_extra_even_empty(release, tmp_path):
    # What Flask's tutorial does with the default instance_path: lib/instance/ in a release.
    env = release_env(tmp_path)
    made = subprocess.run([str(release / "bin/hello"), "eval",
                           "import os, hello.web; os.makedirs(hello.web.create_app().instance_path)"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert (release / "lib/instance").is_dir()
    proc = verify(release, env=env)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: hello 0.1.0 does not match "
                                  "releases/0.1.0/release.json: 1 extra\n\n"
                                  "  extra     lib/instance/\n"), proc.stderr

    # Its files are named too; of a tree of new directories, only the top one.
    (release / "lib/instance/hello.db").write_text("rows")
    (release / "lib/instance/uploads/2026").mkdir(parents=True)
    proc = verify(release, env=env)
    assert "2 extra" in proc.stderr
    assert "  extra     lib/instance/\n  extra     lib/instance/hello.db\n" in proc.stderr
    assert "uploads" not in proc.stderr


def test_what_is_outside_the_manifest_by_design_is_not_extra(release):
    (release / "tmp/log/empty").mkdir(parents=True)
    (release / "tmp/log/hello.log").write_text("log")
    (release / "releases/0.0.8/empty").mkdir(parents=True)
    shutil.copytree(release / "releases/0.1.0", release / "releases/0.0.9")
    (release / "releases/0.0.9/runtime.py").write_text("changed")
    assert verify(release).returncode == 0


def test_verify_takes_no_arguments(hello_release):
    proc = verify(hello_release, "--deep")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unexpected arguments: --deep")
