"""A failed build loses nothing: the previous release stays byte-for-byte, no staging is left."""
from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time

import pytest

from conftest import EXAMPLES, FIXTURES, copy_project, release_env, tree_digest, twelve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    project = copy_project(EXAMPLES / "hello", tmp_path_factory.mktemp("fail") / "hello")
    twelve("release", cwd=project, env={"TWELVE_ENV": "prod"})
    return project, project / "_build" / "prod" / "rel" / "hello"


def assert_untouched(release, before):
    assert tree_digest(release) == before
    leftovers = [p.name for p in release.parent.iterdir() if p.name != release.name]
    assert leftovers == [], f"half-written build dirs left behind: {leftovers}"


def rebuild(project):
    """The prod release built again over the previous one; it may fail."""
    return twelve("release", "--overwrite", cwd=project, env={"TWELVE_ENV": "prod"},
                  check=False)


def edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return text


def test_unresolvable_dependency_keeps_the_previous_release(built):
    project, release = built
    before = tree_digest(release)
    lock = (project / "uv.lock").read_bytes()
    original = edit(project / "pyproject.toml", '"gunicorn>=22",',
                    '"gunicorn>=22", "twelve-no-such-package-4711==9.9",')
    (project / "uv.lock").unlink()
    try:
        proc = rebuild(project)
    finally:
        (project / "pyproject.toml").write_text(original)
        (project / "uv.lock").write_bytes(lock)
    assert proc.returncode == 1, proc.stderr
    assert "resolving [project].dependencies failed" in proc.stderr
    assert "twelve-no-such-package-4711" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert_untouched(release, before)


def test_stale_lock_is_refused(built):
    project, release = built
    before = tree_digest(release)
    original = edit(project / "pyproject.toml", '"gunicorn>=22",', '"gunicorn>=22", "idna",')
    try:
        # Twice: the lock is checked while its packages install, and an export is only
        # remembered once its lock passed the check.
        procs = [rebuild(project), rebuild(project)]
    finally:
        (project / "pyproject.toml").write_text(original)
    for proc in procs:
        assert proc.returncode == 1
        assert "checking that uv.lock is up to date failed" in proc.stderr
        assert "uv lock" in proc.stderr
    assert_untouched(release, before)


def test_broken_build_config_keeps_the_previous_release(built):
    project, release = built
    before = tree_digest(release)
    original = edit(project / "config" / "prod.py", 'greeting="Hello")',
                    'greeting="Hello")\nconfig("hello", rate={}["missing"])')
    try:
        proc = rebuild(project)
    finally:
        (project / "config" / "prod.py").write_text(original)
    assert proc.returncode == 78
    assert re.search(r"config/prod\.py:\d+: KeyError: 'missing'", proc.stderr), proc.stderr
    assert_untouched(release, before)


def test_a_failing_step_keeps_the_previous_release(built):
    project, release = built
    before = tree_digest(release)
    original = edit(project / "pyproject.toml", 'steps = ["assets.deploy", "assemble"]',
                    'steps = ["assets.deploy", "assemble", "hello.nosuch:step"]')
    try:
        proc = rebuild(project)
    finally:
        (project / "pyproject.toml").write_text(original)
    assert proc.returncode == 1
    assert "step 'hello.nosuch:step' cannot be loaded" in proc.stderr
    assert_untouched(release, before)


def test_a_step_that_raises_is_one_message_not_a_traceback(built):
    project, release = built
    before = tree_digest(release)
    (project / "release_steps.py").write_text(
        "def boom(release):\n    raise RuntimeError('my step failed')\n")
    original = edit(project / "pyproject.toml", 'steps = ["assets.deploy", "assemble"]',
                    'steps = ["assets.deploy", "assemble", "release_steps:boom"]')
    try:
        proc = rebuild(project)
    finally:
        (project / "pyproject.toml").write_text(original)
        (project / "release_steps.py").unlink()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert re.search(r"step 'release_steps:boom' failed at .*release_steps\.py:2: "
                     r"RuntimeError: my step failed", proc.stderr), proc.stderr
    assert_untouched(release, before)


LITERAL_SECRET = "kP3v9QzL2mX7wR4tY8uN1bJ6cH5dF0gSaE2qW9rT4yU7iO3pA6sD1fG8hJ5kL0zX"


def test_a_literal_secret_in_the_build_config_fails_even_quiet(built):
    """config/prod.py is frozen into build_config.json: a secret written there would ship."""
    project, release = built
    before = tree_digest(release)
    original = edit(project / "config" / "prod.py", 'greeting="Hello")',
                    f'greeting="Hello", secret_key_base="{LITERAL_SECRET}")')
    try:
        proc = twelve("release", "--overwrite", "--quiet", cwd=project,
                      env={"TWELVE_ENV": "prod"}, check=False)
    finally:
        (project / "config" / "prod.py").write_text(original)
    assert proc.returncode == 1, proc.stderr
    assert ("config/prod.py sets hello.secret_key_base to a literal secret (named like a "
            "secret)") in proc.stderr
    assert 'env.secret("SECRET_KEY_BASE")' in proc.stderr and "Traceback" not in proc.stderr
    assert LITERAL_SECRET not in proc.stdout + proc.stderr
    assert LITERAL_SECRET[:8] not in proc.stdout + proc.stderr
    assert_untouched(release, before)


SLOW_BACKEND = """\
import time

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    time.sleep(60)
    raise RuntimeError("never reached")
"""


def test_a_failure_does_not_wait_for_the_apps_wheel_building_alongside(built):
    """The wheel builds in its own process while the dependencies resolve; when resolving
    fails, the build stops that process and reports at once."""
    project, release = built
    before = tree_digest(release)
    (project / "slow_backend.py").write_text(SLOW_BACKEND)
    lock = (project / "uv.lock").read_bytes()
    original = edit(project / "pyproject.toml", '"gunicorn>=22",',
                    '"gunicorn>=22", "twelve-no-such-package-4711==9.9",')
    text = (project / "pyproject.toml").read_text()
    text = re.sub(r"(?ms)^\[build-system\].*?(?=^\[)", "[build-system]\nrequires = []\n"
                  "build-backend = \"slow_backend\"\nbackend-path = [\".\"]\n\n", text)
    (project / "pyproject.toml").write_text(text)
    (project / "uv.lock").unlink()
    started = time.monotonic()
    try:
        proc = rebuild(project)
    finally:
        (project / "pyproject.toml").write_text(original)
        (project / "uv.lock").write_bytes(lock)
        (project / "slow_backend.py").unlink()
    assert proc.returncode == 1 and "resolving [project].dependencies failed" in proc.stderr
    assert time.monotonic() - started < 30, "the build waited for the wheel"
    backends = subprocess.run(["pgrep", "-f", "slow_backend"], capture_output=True, text=True)
    assert backends.stdout == "", "the wheel's build was left running"
    assert_untouched(release, before)


def test_rebuild_carries_a_legacy_cookie_into_the_run_dir_and_replaces_the_rest(built, tmp_path):
    """A release of an older twelve shipped releases/COOKIE, which its running node uses: the
    rebuild moves it where this runtime looks (tmp/run/COOKIE, 0400) and ships none."""
    project, release = built
    cookie = secrets.token_urlsafe(48).encode() + b"\n"
    (release / "releases" / "COOKIE").write_bytes(cookie)
    (release / "tmp" / "run").mkdir(parents=True, mode=0o700)
    edit(project / "config" / "prod.py", 'greeting="Hello"', 'greeting="Howdy"')
    try:
        twelve("release", "--overwrite", cwd=project, env={"TWELVE_ENV": "prod"})
    finally:
        edit(project / "config" / "prod.py", 'greeting="Howdy"', 'greeting="Hello"')
    assert not (release / "releases" / "COOKIE").exists()
    carried = release / "tmp" / "run" / "COOKIE"
    assert (carried.read_bytes(), oct(carried.stat().st_mode & 0o777)) == (cookie, "0o400")
    shutil.rmtree(release / "tmp")
    proc = subprocess.run([str(release / "bin" / "hello"), "eval",
                           "import twelve; print(twelve.get_env('hello', 'greeting'))"],
                          env=release_env(tmp_path), capture_output=True, text=True)
    assert proc.stdout.strip() == "Howdy", proc.stderr


def test_an_app_that_fails_to_import_exits_with_a_clear_error(tmp_path):
    project = copy_project(FIXTURES / "broken_app", tmp_path / "broken_app")
    twelve("release", cwd=project)
    release = project / "_build" / "dev" / "rel" / "broken_app"
    proc = subprocess.run([str(release / "bin" / "broken_app"), "start"],
                          env=release_env(tmp_path), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "importing the app broken_app.web:app failed: RuntimeError: no database" in proc.stderr
    assert "broken_app/web.py" in proc.stderr, "the app's own frame is shown"
    # include_python = false: the target's python3 must be the version the release was built for.
    manifest = release / "releases" / "0.1.0" / "release.json"
    manifest.write_text(manifest.read_text().replace('"requires_python": "3.', '"requires_python": "2.'))
    wrong = subprocess.run([str(release / "bin" / "broken_app"), "eval", "print(1)"],
                           env=release_env(tmp_path), capture_output=True, text=True, timeout=30)
    assert wrong.returncode == 1 and "this release needs Python 2." in wrong.stderr


def test_strip_false_keeps_every_source_and_still_runs(built, tmp_path):
    project, release = built
    original = edit(project / "pyproject.toml", 'server = "gunicorn"',
                    'server = "gunicorn"\nstrip = false')
    try:
        twelve("release", "--overwrite", cwd=project, env={"TWELVE_ENV": "prod"})
    finally:
        (project / "pyproject.toml").write_text(original)
    lib = release / "lib"
    assert (lib / "flask" / "app.py").is_file() and not (lib / "flask" / "app.pyc").exists()
    assert list((lib / "flask" / "__pycache__").glob("app.*.pyc"))
    stdlib = next((release / "python" / "lib").glob("python3.*"))
    assert (stdlib / "json" / "__init__.py").is_file()
    assert not list((release / "python" / "lib").glob("*.zip"))
    proc = subprocess.run([str(release / "bin" / "hello"), "eval",
                           "import flask, hello.web, json, ssl, sqlite3; print(json.__file__)"],
                          env=release_env(tmp_path), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(stdlib / "json" / "__init__.py")
    verify = subprocess.run([str(release / "bin" / "hello"), "verify"],
                            env=release_env(tmp_path), capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    twelve("release", "--overwrite", cwd=project, env={"TWELVE_ENV": "prod"})  # back to normal


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a small tmpfs")
def test_a_full_disk_is_one_message_and_keeps_the_previous_release(built, tmp_path):
    """A release on a file system of its own (the caches are elsewhere, so it is copied, not
    linked): built once, then the disk filled and the build run again."""
    project, _ = built
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", str(disk)], check=True)
    try:
        target = disk / "hello"
        twelve("release", "--overwrite", "--quiet", "--path", str(target), cwd=project,
               env={"TWELVE_ENV": "prod"})
        before = tree_digest(target)
        filler = disk / "filler"
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        with open(filler, "wb") as f:
            f.truncate(0)
            f.write(b"\0" * max(0, free - 8 * 1024 * 1024))  # leave 8 MB: the copy runs out
        proc = twelve("release", "--overwrite", "--path", str(target), cwd=project,
                      env={"TWELVE_ENV": "prod"}, check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        assert "no space left on the device while building" in proc.stderr, proc.stderr
        assert len(proc.stderr) < 1000, "one message, not a list of every file"
        filler.unlink()
        assert tree_digest(target) == before
        assert [p.name for p in disk.iterdir()] == ["hello"], "staging left behind"
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
