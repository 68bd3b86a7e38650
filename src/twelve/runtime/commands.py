"""The commands of bin/NAME (DESIGN §5), declared once: the usage text, the dispatch and
docs/commands.md all come from ``COMMANDS``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

from twelve.runtime.errors import ERROR, NOT_RUNNING, OK, USAGE, TwelveError, UsageError


@dataclass(frozen=True)
class Command:
    name: str
    args: str
    summary: str
    run: Callable[[object, list[str]], int] | None  # None: announced, not in this version


def _start(release, args: list[str]) -> int:
    from twelve.runtime import node
    process = _one_optional(args, "start [PROCESS]")
    return node.start(release, process or "web")


def _eval(release, args: list[str]) -> int:
    if not args:
        raise UsageError("eval needs the code to run", hint=f"usage: {release.prog} eval "
                         "\"CODE\" [ARGS...], e.g. eval \"hello.release.migrate()\"")
    from twelve.runtime import node
    return node.evaluate(release, args[0], args[1:])


def _version(release, args: list[str]) -> int:
    print(f"{release.name} {release.vsn}")
    return OK


def _env(release, args: list[str]) -> int:
    if args not in ([], ["--example"]):
        raise UsageError(f"unexpected arguments: {' '.join(args)}",
                         hint=f"usage: {release.prog} env [--example]")
    from twelve.runtime import node
    print(node.describe_env(release, example=bool(args)).rstrip("\n"))
    return OK


def _check(release, args: list[str]) -> int:
    from twelve.runtime import node
    _one_optional(args, "check [PROCESS]")
    print(node.check(release))
    return OK


def _one_optional(args: list[str], usage: str) -> str | None:
    if len(args) > 1:
        raise UsageError(f"too many arguments: {' '.join(args)}", hint=f"usage: {usage}")
    return args[0] if args else None


COMMANDS: tuple[Command, ...] = (
    Command("start", "[PROCESS]", "boot in the foreground; logs on stdout", _start),
    Command("start_repl", "", "as start, with a Python REPL attached to the running system",
            None),
    Command("daemon", "[PROCESS]", "as start, detached; logs to $RELEASE_TMP/log/", None),
    Command("daemon_repl", "", "as daemon, with a REPL to attach to with remote", None),
    Command("eval", "\"CODE\" [ARGS...]", "run CODE in a fresh, configured system that is not "
            "started (migrations); ARGS go to sys.argv", _eval),
    Command("rpc", "\"CODE\"", "run CODE inside the running system; print its output and the "
            "value of a final expression", None),
    Command("remote", "", "an interactive Python REPL inside the running system", None),
    Command("restart", "", "re-boot the running system in place, refusing no connection",
            None),
    Command("stop", "[PROCESS]", "stop gracefully: stop accepting, drain in-flight requests",
            None),
    Command("pid", "[PROCESS]", "print the OS pid of the running system", None),
    Command("version", "", "print NAME VSN", _version),
    Command("env", "[--example]", "list the environment variables the runtime config reads "
            "(--example: an EnvironmentFile template)", _env),
    Command("check", "[PROCESS]", "load the config and import the app without serving",
            _check),
)
BY_NAME = {c.name: c for c in COMMANDS}

EXIT_CODES = ((OK, "ok"), (ERROR, "error"), (USAGE, "usage"), (NOT_RUNNING, "not running"),
              (78, "invalid configuration"))


def usage(prog: str) -> str:
    width = max(len(f"{c.name} {c.args}") for c in COMMANDS)
    lines = [f"Usage: {prog} COMMAND [ARGS]", "", "Commands:", ""]
    for c in COMMANDS:
        later = "" if c.run else "  (not in this version)"
        lines.append(f"  {f'{c.name} {c.args}'.ljust(width)}  {c.summary}{later}")
    codes = ", ".join(f"{code} {text}" for code, text in EXIT_CODES)
    lines += ["", f"Exit codes: {codes}."]
    return "\n".join(lines)


def dispatch(argv: list[str], environ: dict) -> int:
    from twelve.runtime.boot import release_from_environ

    release = release_from_environ(environ)
    if not argv or argv[0] in ("help", "-h", "--help"):
        print(usage(release.prog))
        return OK if argv else USAGE
    command = BY_NAME.get(argv[0])
    if command is None:
        print(f"error: unknown command {argv[0]!r}\n\n{usage(release.prog)}", file=sys.stderr)
        return USAGE
    if command.run is None:
        raise TwelveError(f"`{release.prog} {command.name}` is not available in this version of "
                          "twelve; it arrives with the running-system release (daemon, stop, "
                          "pid, rpc, remote, restart)",
                          hint=f"For now: `{release.prog} start` in the foreground (or under "
                               "systemd), stopped with SIGTERM or Ctrl-C.")
    return command.run(release, argv[1:])
