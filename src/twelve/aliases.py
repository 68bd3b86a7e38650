"""Aliases (mix-style): named lists of commands in ``[tool.twelve.aliases]``, run by
``twelve run NAME`` and usable as release steps (e.g. ``"assets.deploy"`` before ``assemble``).

Each command of an alias is another alias (when the command is exactly an alias name) or a shell
command (``sh -c``, in the project's root), where ``twelve`` is this twelve, whatever else is
on PATH, and the project's ``node_modules/.bin`` comes before the rest of PATH. The first failure
stops the alias, and twelve exits with that command's own exit code.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from typing import Callable

from twelve.errors import ProjectError, TwelveError
from twelve.project import Project


class AliasFailed(TwelveError):
    """A command of an alias failed; the exit code is the command's own."""

    def __init__(self, alias: str, command: str, code: int) -> None:
        super().__init__(f"alias {alias!r} stopped: `{command}` exited with {code}",
                         hint="Its own output is above.")
        self.exit_code = code


def run_alias(project: Project, name: str, *, log: Callable[[str], None],
              _stack: tuple[str, ...] = ()) -> None:
    if name not in project.aliases:
        known = ", ".join(sorted(project.aliases)) or "none defined"
        raise ProjectError(f"unknown alias {name!r} (aliases: {known})",
                           hint="Define it in [tool.twelve.aliases] in pyproject.toml.")
    if name in _stack:
        cycle = " → ".join((*_stack, name))
        raise ProjectError(f"alias cycle: {cycle}", hint="An alias may not call itself.")
    for command in project.aliases[name]:
        first = command.split(maxsplit=1)[0] if command.strip() else ""
        if first in project.aliases and first == command.strip():
            run_alias(project, first, log=log, _stack=(*_stack, name))
            continue
        log(f"* running {command}")
        code = _run_command(project, command)
        if code != 0:
            raise AliasFailed(name, command, code)


def _run_command(project: Project, command: str) -> int:
    """``sh -c command`` with this twelve first on PATH, then the project's node tools."""
    with tempfile.TemporaryDirectory(prefix="twelve-alias-") as shim_dir:
        shim = os.path.join(shim_dir, "twelve")
        with open(shim, "w") as f:
            f.write(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m twelve "$@"\n')
        os.chmod(shim, 0o755)
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([shim_dir, str(project.root / "node_modules" / ".bin"),
                                       env.get("PATH", "")])
        return subprocess.run(["sh", "-c", command], cwd=project.root, env=env).returncode
