"""Aliases: commands in order, nested aliases, twelve subcommands, first failure's exit code."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import twelve

PYPROJECT = """
[project]
name = "a"
version = "1.0"
dependencies = ["gunicorn"]

[tool.twelve]
app = "a.web:app"

[tool.twelve.aliases]
one = ["echo one >> log.txt", "two"]
two = "echo two >> log.txt"
secret = ["twelve gen.secret 40 > secret.txt"]
failing = ["echo before >> log.txt", "sh -c 'exit 7'", "echo after >> log.txt"]
loop = ["loop"]
python = ["uv --version > uv.txt",
          "/usr/bin/python3 -c 'import os, twelve; print(os.path.realpath(twelve.__file__))' > twelve.txt"]
"""


def run(tmp_path, *args):
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    return subprocess.run([sys.executable, "-m", "twelve", "run", *args], cwd=tmp_path,
                          capture_output=True, text=True)


def test_commands_run_in_order_and_aliases_nest(tmp_path):
    proc = run(tmp_path, "one")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "log.txt").read_text().split() == ["one", "two"]


def test_a_twelve_subcommand_runs_this_twelve(tmp_path):
    assert run(tmp_path, "secret").returncode == 0
    assert len((tmp_path / "secret.txt").read_text().strip()) == 40


def test_first_failure_stops_with_its_exit_code(tmp_path):
    proc = run(tmp_path, "failing")
    assert proc.returncode == 7
    assert "alias 'failing' stopped: `sh -c 'exit 7'` exited with 7" in proc.stderr
    assert (tmp_path / "log.txt").read_text().split() == ["before"]


def test_unknown_alias_and_cycles(tmp_path):
    unknown = run(tmp_path, "nope")
    assert unknown.returncode == 2 and "unknown alias 'nope'" in unknown.stderr
    loop = run(tmp_path, "loop")
    assert loop.returncode == 2 and "alias cycle: loop → loop" in loop.stderr


def test_uv_and_twelve_are_reachable_from_the_projects_own_python(tmp_path):
    """`uv run python manage.py …` in an alias: uv is twelve's, and `import twelve` works in a
    Python that does not have twelve installed (here the system's, without the test venv)."""
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("no /usr/bin/python3")
    proc = run(tmp_path, "python")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "uv.txt").read_text().startswith("uv ")
    assert (tmp_path / "twelve.txt").read_text().strip() == os.path.realpath(twelve.__file__)
