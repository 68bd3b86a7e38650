"""Aliases (mix-style): named lists of commands in ``[tool.twelve.aliases]``, run by
``twelve run NAME`` and usable as release steps (e.g. ``"assets.deploy"`` before ``assemble``).

Each command of an alias is another alias (when the command is exactly an alias name) or a shell
command (``sh -c``, in the project's root), where ``twelve`` is this twelve and ``uv`` the uv it
builds with, whatever else is on PATH, and the project's ``node_modules/.bin`` comes before the
rest of PATH. ``import twelve`` finds this twelve too (PYTHONPATH), so a command that runs the
project's own Python — ``uv run --frozen python manage.py collectstatic``, whose settings read
``twelve.get_env`` — works on a build machine where twelve is not in the project's environment.
The first failure stops the alias, and twelve exits with that command's own exit code.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from typing import Callable

import twelve
from twelve.builder import progress
from twelve.builder.deps import uv_binary
from twelve.errors import ProjectError, TwelveError
from twelve.project import Project


class AliasFailed(TwelveError):
    """A command of an alias failed; the exit code is the command's own."""

    def __init__(self, alias: str, command: str, code: int) -> None:
        super().__init__(f"alias {alias!r} stopped: `{command}` exited with {code}",
                         hint="Its own output is above.")
        self.exit_code = code


def run_alias(project: Project, name: str, *, log: Callable[[str], None],
              quiet: bool = False, _stack: tuple[str, ...] = ()) -> None:
    """Run the alias's commands in order; ``quiet`` keeps their output unless one fails."""
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
            run_alias(project, first, log=log, quiet=quiet, _stack=(*_stack, name))
            continue
        log(f"* running {command}")
        code = _run_command(project, command, quiet)
        if code != 0:
            raise AliasFailed(name, command, code)


def _run_command(project: Project, command: str, quiet: bool = False) -> int:
    """``sh -c command`` with this twelve (and its uv) first on PATH, then the project's node
    tools, and this twelve importable."""
    with tempfile.TemporaryDirectory(prefix="twelve-alias-") as work:
        shims, importable = os.path.join(work, "bin"), os.path.join(work, "lib")
        os.mkdir(shims)
        os.mkdir(importable)
        shim = os.path.join(shims, "twelve")
        with open(shim, "w") as f:
            f.write(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m twelve "$@"\n')
        os.chmod(shim, 0o755)
        os.symlink(uv_binary(), os.path.join(shims, "uv"))
        # Only the twelve package, not the site-packages it is installed in.
        os.symlink(os.path.dirname(twelve.__file__), os.path.join(importable, "twelve"))
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([shims, str(project.root / "node_modules" / ".bin"),
                                       env.get("PATH", "")])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (importable, env.get("PYTHONPATH")) if p)
        watching = progress.current()
        if watching is None:
            proc = subprocess.run(["sh", "-c", command], cwd=project.root, env=env,
                                  stdout=subprocess.PIPE if quiet else None,
                                  stderr=subprocess.STDOUT if quiet else None)
            output = proc.stdout.decode(errors="replace") if quiet else ""
        else:  # its output through the build's Progress: a heartbeat while it is silent
            proc = subprocess.Popen(["sh", "-c", command], cwd=project.root, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, errors="replace")
            output = watching.watch(command, proc, show_output=not quiet)
        if quiet and proc.returncode != 0:
            sys.stderr.write(output)
        return proc.returncode
