"""Environment files: ``bin/NAME start --env-file FILE`` (and every command that evaluates the
runtime config), read as systemd reads ``EnvironmentFile=``, so the file a unit uses on the
server is the file a developer tries the release with.

Syntax (systemd's): ``NAME=VALUE`` lines; blank lines and lines starting with ``#`` or ``;``
are ignored; whitespace around the name and before the value is dropped; ``'single quotes'``
keep everything verbatim, ``"double quotes"`` take backslash escapes of ``"``, ``\\``, `````
and ``$`` only; unquoted, a backslash escapes the next character and trailing whitespace is
dropped; a backslash at the end of a line continues the value on the next. As a courtesy to
files written for ``set -a; . FILE``, an ``export `` before the name is allowed. No variable
is expanded.

Precedence: a variable set in the environment wins over the file (``PORT=5000 bin/NAME start
--env-file prod.env`` serves on 5000). The file's path and the names it set travel in
``RELEASE_ENV_FILE`` and ``RELEASE_ENV_FILE_KEYS`` (names only, never values), so a restart —
which execs the node again — reads the file anew, and ``bin/NAME env`` can say where each value
came from. Problems are reported all at once with the file and line, never a value (exit 78).
"""
from __future__ import annotations

import os

from twelve.runtime.config.env import ConfigError

ENV_FILE = "RELEASE_ENV_FILE"
FILE_KEYS = "RELEASE_ENV_FILE_KEYS"
CANNOT_READ = "cannot read the env file {path}: {reason}"
CANNOT_READ_HINT = "Check the path given to --env-file (or in RELEASE_ENV_FILE)."
INVALID = "invalid env file {path}: {count} problem{s}\n{lines}"
INVALID_HINT = ("Write one NAME=VALUE a line, as systemd's EnvironmentFile= reads it; quote "
                "values with spaces, e.g. GREETING=\"hello world\".")
BAD_NAME = "line {line}: {name!r} is not a variable name (letters, digits and _, not first a digit)"
NO_EQUALS = "line {line}: expected NAME=VALUE"
UNTERMINATED = "line {line}: the quoted value of {name} is not closed"
SHELL_ESCAPES = '"\\`$'


def read_env_file(path: str) -> dict[str, str]:
    """NAME → value of an environment file, or ConfigError listing every bad line."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise ConfigError(CANNOT_READ.format(path=path, reason=reason),
                          hint=CANNOT_READ_HINT) from None
    values, problems = parse_env_file(text)
    if problems:
        count = len(problems)
        raise ConfigError(INVALID.format(path=path, count=count, s="s" if count != 1 else "",
                                         lines="\n".join(f"  {p}" for p in problems)),
                          hint=INVALID_HINT)
    return values


def parse_env_file(text: str) -> tuple[dict[str, str], list[str]]:
    """(values, problems) of an environment file's text; see the module docstring."""
    values: dict[str, str] = {}
    problems: list[str] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        start_line = line
        while i < n and text[i] in " \t\r":
            i += 1
        if i >= n:
            break
        if text[i] == "\n":
            i, line = i + 1, line + 1
            continue
        if text[i] in "#;":
            i, line = _skip_line(text, i, line)
            continue
        end = text.find("\n", i)
        end = n if end < 0 else end
        equals = text.find("=", i, end)
        if equals < 0:
            problems.append(NO_EQUALS.format(line=start_line))
            i, line = _skip_line(text, i, line)
            continue
        name = text[i:equals].strip(" \t\r")
        if name.startswith("export") and name[6:7] in (" ", "\t"):
            name = name[6:].strip(" \t")
        value, i, line, closed = _value(text, equals + 1, line)
        if not _valid_name(name):
            problems.append(BAD_NAME.format(line=start_line, name=name))
        elif not closed:
            problems.append(UNTERMINATED.format(line=start_line, name=name))
        else:
            values[name] = value
    return values, problems


def _skip_line(text: str, i: int, line: int) -> tuple[int, int]:
    end = text.find("\n", i)
    return (len(text), line) if end < 0 else (end + 1, line + 1)


def _value(text: str, i: int, line: int) -> tuple[str, int, int, bool]:
    """The value starting at ``i``: (value, index after its line, line number, closed)."""
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    out: list[str] = []
    trailing = 0  # unquoted whitespace at the end, dropped when the line ends
    while i < n and text[i] != "\n":
        c = text[i]
        if c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                return "", n, line + text.count("\n", i), False
            out.append(text[i + 1:end])
            line += text.count("\n", i, end)
            i, trailing = end + 1, 0
        elif c == '"':
            i, line, closed = _double_quoted(text, i + 1, line, out)
            trailing = 0
            if not closed:
                return "", n, line, False
        elif c == "\\":
            if i + 1 < n and text[i + 1] == "\n":
                i, line = i + 2, line + 1  # continuation
            elif i + 1 < n:
                out.append(text[i + 1])
                i, trailing = i + 2, 0
            else:
                i += 1
        else:
            out.append(c)
            trailing = trailing + 1 if c in " \t\r" else 0
            i += 1
    value = "".join(out)
    if trailing:
        value = value[:-trailing]
    return value, i + 1, line + 1, True


def _double_quoted(text: str, i: int, line: int, out: list[str]) -> tuple[int, int, bool]:
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return i + 1, line, True
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "\n":
                line += 1
            elif nxt in SHELL_ESCAPES:
                out.append(nxt)
            else:
                out.append("\\" + nxt)
            i += 2
            continue
        if c == "\n":
            line += 1
        out.append(c)
        i += 1
    return n, line, False


def _valid_name(name: str) -> bool:
    return bool(name) and not name[0].isdigit() and all(
        c == "_" or ("a" <= c.lower() <= "z") or c.isdigit() for c in name)


def apply_env_file(environ: dict, path: str | None) -> dict:
    """``environ`` with the env file's values under the names it does not set itself. ``path``
    None: the file of ``RELEASE_ENV_FILE``, if any (a restart's exec, a daemon's node). The
    names the previous reading set are dropped first, so a restart sees the file as it is."""
    path = path or environ.get(ENV_FILE)
    if not path:
        return environ
    path = os.path.abspath(path)
    environ = dict(environ)
    for name in environ.pop(FILE_KEYS, "").split(","):
        environ.pop(name, None)
    values = read_env_file(path)
    applied = sorted(name for name in values if name not in environ)
    environ.update({name: values[name] for name in applied})
    environ[ENV_FILE] = path
    environ[FILE_KEYS] = ",".join(applied)
    return environ


def value_sources(environ) -> dict[str, str]:
    """NAME → "env file" for the names the env file set; others come from the environment."""
    names = environ.get(FILE_KEYS, "")
    return {name: "env file" for name in names.split(",") if name}
