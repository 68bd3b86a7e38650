"""The release moved elsewhere, run with an empty environment, with every Python of the build
machine hidden and a PYTHONPATH that shadows flask: it still migrates, serves and stops."""
from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SECRET, free_port, get, wait_http

pytestmark = pytest.mark.slow


def hidden_pythons() -> list[str]:
    """Every interpreter installation of this machine, the build's own first."""
    paths = {os.path.realpath(sys.base_prefix) if sys.base_prefix != "/usr" else None}
    paths |= set(glob.glob("/usr/lib/python3*")) | set(glob.glob("/usr/local/lib/python3*"))
    paths |= set(glob.glob("/usr/bin/python3*")) | set(glob.glob("/usr/local/bin/python3*"))
    pyenv = Path.home() / ".pyenv"
    if pyenv.is_dir():
        paths.add(str(pyenv))
    found = sorted(p for p in paths if p and os.path.exists(p))
    # A path inside another hidden one is hidden already (and its mount point would vanish).
    return [p for p in found if not any(p.startswith(q + "/") for q in found)]


def isolated(command: list[str], env: dict) -> list[str]:
    """`command` in a private mount namespace where the hidden paths are empty."""
    mounts = []
    for path in hidden_pythons():
        if os.path.isdir(path):
            mounts.append(f"mount -t tmpfs tmpfs {shlex.quote(path)}")
        else:
            mounts.append(f"mount --bind /dev/null {shlex.quote(path)}")
    assignments = [f"{k}={v}" for k, v in env.items()]
    script = " && ".join(mounts + ['exec env -i "$@"'])
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
            *assignments, *command]


@pytest.fixture
def moved_release(hello_release, tmp_path) -> Path:
    dest = tmp_path / "elsewhere" / "hello"
    shutil.copytree(hello_release, dest, symlinks=True)
    return dest


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for unshare -m and mounts")
def test_moved_release_runs_with_every_python_hidden(moved_release, tmp_path):
    shadow = tmp_path / "shadow"
    (shadow / "flask").mkdir(parents=True)
    (shadow / "flask" / "__init__.py").write_text("raise ImportError('shadowed flask!')\n")
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(shadow), "PYTHONHOME": "/nonexistent",
           "SECRET_KEY_BASE": SECRET, "PORT": str(port), "HOST": "127.0.0.1",
           "DATABASE_URL": f"sqlite:///{tmp_path}/state/hello.db"}
    bin_hello = str(moved_release / "bin" / "hello")

    check = subprocess.run(isolated(["/bin/sh", "-c", "ls /root/.pyenv | wc -l; "
                                     "command -v python3 || echo none"], env),
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert check.stdout.split() == ["0", "none"], "the build's Python must be hidden"

    migrate = subprocess.run(isolated([bin_hello, "eval", "hello.release.migrate()"], env),
                             capture_output=True, text=True, timeout=60)
    assert migrate.returncode == 0, migrate.stderr
    assert "migrated" in migrate.stdout

    node = subprocess.Popen(isolated([bin_hello, "start"], env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/", 30, node)
        status, body, _ = get(url + "/")
        assert status == 200 and b"twelve release" in body
        first = json.loads(get(url + "/visits")[1])["visits"]
        second = json.loads(get(url + "/visits")[1])["visits"]
        assert second == first + 1
        started = time.monotonic()
        node.terminate()  # SIGTERM, to the node itself: unshare and sh exec'd into it
        assert node.wait(15) == 0
        assert time.monotonic() - started < 10
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()

