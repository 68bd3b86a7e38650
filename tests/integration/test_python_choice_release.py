"""`twelve release` for a chosen interpreter ([tool.twelve] python), end to end: the release
bundles that one and serves with it, and a requires-python no installed interpreter meets
stops the build before anything is resolved. Interpreters are the machine's own (pyenv's,
Debian's); none is downloaded."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import FIXTURES, copy_project, free_port, get, release_env, twelve
from twelve.builder import pythons

BUILDER = Path(os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable))
DEBIAN = Path("/usr/bin/python3.11")


def pick_app(tmp_path: Path, twelve_keys: str = "", project_keys: str = "") -> Path:
    root = copy_project(FIXTURES / "pick_app", tmp_path / "pick_app")
    text = (root / "pyproject.toml").read_text()
    text = text.replace('version = "0.1.0"\n', f'version = "0.1.0"\n{project_keys}\n')
    (root / "pyproject.toml").write_text(text + twelve_keys + "\n")
    return root


def built(root: Path) -> Path:
    twelve("release", "--overwrite", cwd=root, env={"TWELVE_ENV": "prod"})
    return root / "_build" / "prod" / "rel" / "pick_app"


def release_python(release: Path, tmp_path: Path) -> str:
    """The bundled interpreter's sys.version, asked through `bin/NAME eval`."""
    proc = subprocess.run([str(release / "bin" / "pick_app"), "eval",
                           "import sys; print(sys.version); print(sys.executable)"],
                          env=release_env(tmp_path, RELEASE_TMP=str(tmp_path / "rt")),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version, executable = proc.stdout.strip().splitlines()
    assert Path(executable).is_relative_to(release / "python"), executable
    return version


def own_version(exe: Path) -> str:
    return subprocess.run([str(exe), "-c", "import sys; print(sys.version)"],
                          capture_output=True, text=True, check=True).stdout.strip()


def manifest(release: Path) -> dict:
    return json.loads((release / "releases" / "0.1.0" / "release.json").read_text())


def other_minor() -> tuple[str, Path]:
    mine = sysconfig.get_python_version()
    for version, exe in pythons.installed():
        if not version.startswith(mine + ".") and int(version.split(".")[1]) >= 11:
            return version, exe
    pytest.skip(f"no CPython >= 3.11 other than {mine} installed (looked in `uv python dir`, "
                "~/.pyenv/versions and python3.X on PATH; `uv python install` downloads from "
                "GitHub, which this machine may not reach)")


def test_requires_python_no_interpreter_meets_fails_before_resolving(tmp_path):
    root = pick_app(tmp_path, project_keys='requires-python = ">=3.99"')
    proc = twelve("release", cwd=root, check=False, env={"TWELVE_ENV": "prod"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'requires-python = ">=3.99" excludes Python' in proc.stderr
    assert "Installed interpreters:" in proc.stderr and str(BUILDER) in proc.stderr
    assert "uv python install" in proc.stderr
    assert "Traceback" not in proc.stderr
    # first of all: no step ran, nothing was resolved or staged
    assert "resolving" not in proc.stdout and "assembling" not in proc.stdout
    assert not (root / "_build").exists()


def test_python_version_bundles_and_serves_with_that_interpreter(tmp_path, nodes):
    version, exe = other_minor()
    short = ".".join(version.split(".")[:2])
    release = built(pick_app(tmp_path, f'python = "{short}"',
                             f'requires-python = ">={short}"'))
    assert release_python(release, tmp_path) == own_version(exe)
    assert (release / "python" / "bin" / f"python{short}").is_file()
    data = manifest(release)
    assert data["python"]["version"] == version and data["requires_python"] == short
    tag = "cpython-" + short.replace(".", "")
    assert list((release / "lib" / "pick_app" / "__pycache__").glob(f"web.{tag}.pyc"))

    port = free_port()
    env = release_env(tmp_path, PORT=str(port), HOST="127.0.0.1",
                      RELEASE_TMP=str(tmp_path / "rt2"))
    node = nodes([str(release / "bin" / "pick_app"), "start"], env, port).wait_ready(60)
    status, body, _ = get(node.url("/"))
    assert (status, body.decode()) == (200, own_version(exe))
    assert node.terminate(30) == 0


def test_python_path_bundles_that_installation_of_the_same_version(tmp_path):
    if not DEBIAN.is_file() or Path(os.path.realpath(DEBIAN)) == BUILDER:
        pytest.skip(f"{DEBIAN} is missing or is the interpreter twelve runs on")
    release = built(pick_app(tmp_path, f'python = "{DEBIAN}"'))
    assert release_python(release, tmp_path) == own_version(DEBIAN) != sys.version
    assert manifest(release)["python"]["version"] == pythons.probe(DEBIAN).version


def test_without_include_python_the_target_must_have_the_chosen_version(tmp_path):
    version, _ = other_minor()
    short = ".".join(version.split(".")[:2])
    release = built(pick_app(tmp_path, f'python = "{short}"\ninclude_python = false'))
    assert manifest(release)["requires_python"] == short
    tag = "cpython-" + short.replace(".", "")
    assert list((release / "lib" / "pick_app" / "__pycache__").glob(f"web.{tag}.pyc"))
    # The target's python3 (/usr/bin/python3: another X.Y) is refused at boot.
    proc = subprocess.run([str(release / "bin" / "pick_app"), "eval", "print(1)"],
                          env=release_env(tmp_path, RELEASE_TMP=str(tmp_path / "rt")),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and f"needs Python {short}" in proc.stderr, proc.stderr
