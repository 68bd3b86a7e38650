"""A long build keeps its user informed: on a terminal (a real pty) one status line redrawn
with the elapsed time; through a pipe plain lines; a summary of each phase's time at the end."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
import pytest

from conftest import twelve

pytestmark = pytest.mark.slow

PYPROJECT = """\
[project]
name = "slow"
version = "0.1.0"
dependencies = ["numpy>=1.26", "gunicorn>=22"]

[tool.twelve]
app = "numpy:__name__"
steps = ["warm-up", "assemble"]

[tool.twelve.aliases]
warm-up = "sleep 7; echo warmed"
"""


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "slow"
    root.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT)
    return root


def cold_env(tmp_path: Path, name: str) -> dict:
    """Empty uv and dependency caches (numpy is downloaded again), the interpreter's shared:
    preparing it is not what is tested here."""
    cache = tmp_path / name
    if not cache.exists():
        (cache / "twelve").mkdir(parents=True)
        shared = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "twelve"
        (shared / "python").mkdir(parents=True, exist_ok=True)
        (cache / "twelve" / "python").symlink_to(shared / "python")
    return dict(os.environ, XDG_CACHE_HOME=str(cache), UV_CACHE_DIR=str(cache / "uv"),
                TWELVE_ENV="prod")


def test_on_a_terminal_one_status_line_is_redrawn(project, tmp_path):
    child = pexpect.spawn(sys.executable, ["-m", "twelve", "release"], cwd=str(project),
                          env=cold_env(tmp_path, "tty"), encoding="utf-8", timeout=300,
                          dimensions=(24, 200))
    try:
        child.expect(r"\r\x1b\[2K  sleep 7; echo warmed \([2-6] s\)")
        child.expect("warmed")
        child.expect(r"\r\x1b\[2K  installing 2 locked packages: [^\r\n]* \(\d+ s\)")
        # python: the wait for the interpreter, prepared while the dependencies install
        child.expect(r"\* done in [\d.]+ s \(warm-up [\d.]+ s, assemble [\d.]+ s "
                     r"\[dependencies [\d.]+ s, runtime [\d.]+ s, python [\d.]+ s")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_through_a_pipe_plain_lines(project, tmp_path):
    proc = twelve("release", cwd=project, env=cold_env(tmp_path, "pipe"), timeout=300)
    lines = proc.stdout.splitlines()
    assert "\x1b" not in proc.stdout and "\r" not in proc.stdout
    assert "  … sleep 7; echo warmed: still running (5 s)" in lines
    assert "  installing 2 locked packages: downloading numpy" in "\n".join(lines)
    assert any(line.startswith("* done in ") for line in lines)
    quiet = twelve("release", "--quiet", "--overwrite", cwd=project,
                   env=cold_env(tmp_path, "pipe"))
    assert quiet.stdout == ""
