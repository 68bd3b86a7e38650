"""The commands of bin/NAME (DESIGN §5), declared once: the usage text, the dispatch and
docs/commands.md all come from ``COMMANDS``.
"""
from __future__ import annotations

import os
import sys

from twelve.runtime.errors import CONFIG, ERROR, NOT_RUNNING, OK, STOPPING, USAGE, UsageError
from twelve.runtime.release import check_python, release_from_environ

class Command:
    """name, args, summary, run(release, args) -> exit code; env_file: the command evaluates
    the runtime config, so it takes --env-file. A plain class: the control commands are timed
    in milliseconds, and dataclasses or collections (namedtuple) cost several to import."""

    __slots__ = ("name", "args", "summary", "run", "env_file")

    def __init__(self, name: str, args: str, summary: str, run, env_file: bool = False) -> None:
        self.name, self.args, self.summary, self.run = name, args, summary, run
        self.env_file = env_file

    def __repr__(self) -> str:
        return f"Command({self.name!r})"
ENV_FILE_OPTION = "--env-file"


def _start(release, args: list[str]) -> int:
    from twelve.runtime.process import node
    return node.start(release, _process(args, "start [PROCESS]"))


def _start_repl(release, args: list[str]) -> int:
    from twelve.runtime.process import node
    _no_args(args, "start_repl")
    return node.start(release, "web", repl=True)


def _daemon(release, args: list[str]) -> int:
    from twelve.runtime.process import daemon
    return daemon.daemon(release, _process(args, "daemon [PROCESS]"))


def _daemon_repl(release, args: list[str]) -> int:
    from twelve.runtime.process import daemon
    _no_args(args, "daemon_repl")
    return daemon.daemon(release, "web")


def _pid(release, args: list[str]) -> int:
    from twelve.runtime.control import remote
    return remote.pid(release, _process(args, "pid [PROCESS]"))


def _stop(release, args: list[str]) -> int:
    from twelve.runtime.control import remote
    return remote.stop(release, _process(args, "stop [PROCESS]"))


def _restart(release, args: list[str]) -> int:
    from twelve.runtime.control import remote
    return remote.restart(release, _process(args, "restart [PROCESS]"))


def _rpc(release, args: list[str]) -> int:
    from twelve.runtime.control import remote
    process, rest = _process_option(args)
    if len(rest) != 1:
        raise UsageError("rpc needs exactly one argument, the code to run",
                         hint=f"usage: {release.prog} rpc [--process TYPE] \"CODE\", "
                              "e.g. rpc \"1 + 1\"")
    return remote.rpc(release, process, rest[0])


def _remote(release, args: list[str]) -> int:
    from twelve.runtime.control import remote
    process, rest = _process_option(args)
    _no_args(rest, "remote [--process TYPE]")
    return remote.remote(release, process)


def _process(args: list[str], usage: str) -> str:
    if len(args) > 1 or (args and args[0].startswith("-")):
        raise UsageError(f"unexpected arguments: {' '.join(args)}", hint=f"usage: {usage}")
    return args[0] if args else "web"


def _process_option(args: list[str]) -> tuple[str, list[str]]:
    if args[:1] == ["--process"]:
        if len(args) < 2:
            raise UsageError("--process needs a process type, e.g. --process worker")
        return args[1], args[2:]
    return "web", args


def _no_args(args: list[str], usage: str) -> None:
    if args:
        raise UsageError(f"unexpected arguments: {' '.join(args)}", hint=f"usage: {usage}")


def _eval(release, args: list[str]) -> int:
    if not args:
        raise UsageError("eval needs the code to run", hint=f"usage: {release.prog} eval "
                         "\"CODE\" [ARGS...], e.g. eval \"hello.release.migrate()\"")
    from twelve.runtime import system
    return system.evaluate(release, args[0], args[1:])


def _version(release, args: list[str]) -> int:
    print(f"{release.name} {release.vsn}")
    return OK


def _env(release, args: list[str]) -> int:
    if args not in ([], ["--example"]):
        raise UsageError(f"unexpected arguments: {' '.join(args)}",
                         hint=f"usage: {release.prog} env [--example]")
    from twelve.runtime import system
    print(system.describe_env(release, example=bool(args)).rstrip("\n"))
    return OK


def _check(release, args: list[str]) -> int:
    from twelve.runtime import system
    print(system.check(release, _process(args, "check [PROCESS]")))
    return OK


def _verify(release, args: list[str]) -> int:
    if args:
        raise UsageError(f"unexpected arguments: {' '.join(args)}",
                         hint=f"usage: {release.prog} verify")
    from twelve.runtime import verify
    print(verify.verify_release(release))
    return OK


COMMANDS: tuple[Command, ...] = (
    Command("start", "[--env-file FILE] [PROCESS]", "boot in the foreground; logs on stdout",
            _start, True),
    Command("start_repl", "[--env-file FILE]", "as start, with a Python REPL attached to the "
            "running system", _start_repl, True),
    Command("daemon", "[--env-file FILE] [PROCESS]", "as start, detached; logs to "
            "$RELEASE_TMP/log/; returns when ready", _daemon, True),
    Command("daemon_repl", "[--env-file FILE]", "as daemon; attach a REPL later with remote",
            _daemon_repl, True),
    Command("eval", "[--env-file FILE] \"CODE\" [ARGS...]", "run CODE in a fresh, configured "
            "system that is not started (migrations); ARGS go to sys.argv", _eval, True),
    Command("rpc", "[--process TYPE] \"CODE\"", "run CODE inside the running system; print "
            "its output and the value of a final expression", _rpc),
    Command("remote", "[--process TYPE]", "an interactive Python REPL inside the running "
            "system", _remote),
    Command("restart", "[PROCESS]", "re-boot the running system in place (new code and "
            "config), refusing no connection", _restart),
    Command("stop", "[PROCESS]", "stop gracefully: stop accepting, drain in-flight requests",
            _stop),
    Command("pid", "[PROCESS]", "print the OS pid of the running system", _pid),
    Command("version", "", "print NAME VSN", _version),
    Command("env", "[--env-file FILE] [--example]", "list the environment variables the "
            "runtime config reads and where each value comes from (--example: an "
            "EnvironmentFile template)", _env, True),
    Command("check", "[--env-file FILE] [PROCESS]", "load the config and import the app "
            "without serving", _check, True),
    Command("verify", "", "check every file against releases/VSN/release.json (sha256, "
            "mode); list what is modified, missing or extra", _verify),
)
BY_NAME = {c.name: c for c in COMMANDS}

EXIT_CODES = ((OK, "ok"), (ERROR, "error"), (USAGE, "usage"), (NOT_RUNNING, "not running"),
              (STOPPING, "stopping"), (CONFIG, "invalid configuration"))


def usage(prog: str) -> str:
    width = max(len(f"{c.name} {c.args}") for c in COMMANDS)
    lines = [f"Usage: {prog} COMMAND [ARGS]", "", "Commands:", ""]
    for c in COMMANDS:
        lines.append(f"  {f'{c.name} {c.args}'.ljust(width)}  {c.summary}")
    codes = ", ".join(f"{code} {text}" for code, text in EXIT_CODES)
    lines += ["", f"Exit codes: {codes}."]
    return "\n".join(lines)


def dispatch(argv: list[str], environ: dict) -> int:
    command = BY_NAME.get(argv[0]) if argv else None
    args = argv[1:]
    if command is not None and command.env_file:
        path, args = _env_file_option(args, command)
        environ = _with_env_file(environ, path)
    release = release_from_environ(environ)
    if not sys.prefix.startswith(str(release.root)):  # include_python = false: python3 of PATH
        check_python(release)
    if not argv or argv[0] in ("help", "-h", "--help"):
        print(usage(release.prog))
        return OK if argv else USAGE
    if command is None:
        print(f"error: unknown command {argv[0]!r}\n\n{usage(release.prog)}", file=sys.stderr)
        return USAGE
    return command.run(release, args)


def _env_file_option(args: list[str], command) -> tuple[str | None, list[str]]:
    """``--env-file FILE`` (or ``--env-file=FILE``) before the command's own arguments."""
    if args[:1] == [ENV_FILE_OPTION]:
        if len(args) < 2:
            raise UsageError("--env-file needs a file",
                             hint=f"usage: {command.name} {command.args}")
        return args[1], args[2:]
    if args and args[0].startswith(ENV_FILE_OPTION + "="):
        return args[0].split("=", 1)[1] or None, args[1:]
    return None, args


def _with_env_file(environ: dict, path: str | None) -> dict:
    """The environment with the env file's values (given, or inherited through a restart's or
    a daemon's exec); os.environ follows, for the app and its child processes."""
    from twelve.runtime.config.envfile import ENV_FILE, apply_env_file

    if path is None and not environ.get(ENV_FILE):
        return environ
    updated = apply_env_file(environ, path)
    for name in set(os.environ) - set(updated):
        del os.environ[name]
    os.environ.update(updated)
    return updated
