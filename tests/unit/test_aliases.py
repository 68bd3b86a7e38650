"""Aliases: commands in order, nested aliases, twelve subcommands, first failure's exit code."""
from __future__ import annotations

import subprocess
import sys
import textwrap

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
