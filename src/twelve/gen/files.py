"""What every generator writes, and how: templates rendered into ``Generated`` files, then
written into the project without ever overwriting a file unless asked (``--force``).

Owns the ``@KEY@`` template syntax (the launcher's, so shell ``$VARS`` need no escaping), the
``* creating`` / ``* skipping`` report lines and what a failed write means for the user.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from twelve.errors import TwelveError

TEMPLATES = Path(__file__).parent / "templates"
PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")

CREATING = "* creating {path}"
OVERWRITING = "* overwriting {path}"
IDENTICAL = "* identical {path}"
SKIPPING = "* skipping {path} (exists)"
KEPT_NOTE = ("{count} existing file{s} kept as {they} {were}; run again with --force to "
             "overwrite {them} with the generated version.")
NOT_A_DIR = "{path} exists and is not a directory"
NOT_A_FILE = "{path} exists and is a directory, not a file"
CANNOT_WRITE = "cannot write {path}: {reason}"
CANNOT_WRITE_HINT = "Check the permissions of the project directory, then run the command again."

Log = Callable[[str], None]


@dataclass(frozen=True)
class Generated:
    """One file (``text``) or directory (``text is None``), relative to the project root."""

    path: str
    text: str | None = None
    mode: int = 0o644


def render(template: str, **values: str) -> str:
    """templates/<template> with every ``@KEY@`` replaced; a placeholder alone on its line
    that is replaced by "" takes the line with it (optional lines). A missing key is a bug in
    the generator, so it raises instead of leaving a placeholder in the user's file."""
    def value(match: re.Match) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"template {template} needs a value for @{key}@")
        return values[key]

    lines = []
    for line in (TEMPLATES / template).read_text().splitlines(keepends=True):
        alone = PLACEHOLDER.fullmatch(line.rstrip("\n"))
        if alone and value(alone) == "":
            continue
        lines.append(PLACEHOLDER.sub(value, line))
    return "".join(lines)


def write_files(root: Path, files: list[Generated], *, force: bool, log: Log) -> list[str]:
    """Write ``files`` under ``root``; return the paths kept because they exist (no --force).

    An existing file with the generated content is left alone (``* identical``), so running a
    generator twice changes nothing.
    """
    kept = []
    for item in files:
        path = root / item.path
        try:
            if item.text is None:
                _write_dir(path, item.path, log)
            elif _write_file(path, item, force, log):
                kept.append(item.path)
        except OSError as e:
            raise TwelveError(CANNOT_WRITE.format(path=item.path, reason=e.strerror or e),
                              hint=CANNOT_WRITE_HINT) from None
    if kept:
        many = len(kept) != 1
        log("\n" + KEPT_NOTE.format(count=len(kept), s="s" if many else "",
                                    they="they" if many else "it",
                                    were="were" if many else "was",
                                    them="them" if many else "it"))
    return kept


def _write_dir(path: Path, shown: str, log: Log) -> None:
    if path.is_dir():
        log(SKIPPING.format(path=shown + "/"))
        return
    if path.exists():
        raise TwelveError(NOT_A_DIR.format(path=shown), hint=CANNOT_WRITE_HINT)
    path.mkdir(parents=True)
    log(CREATING.format(path=shown + "/"))


def _write_file(path: Path, item: Generated, force: bool, log: Log) -> bool:
    """Write one file; True when it exists, differs and was kept."""
    if path.is_file() or path.is_symlink():
        if path.is_file() and path.read_text(errors="replace") == item.text \
                and _mode(path) == item.mode:
            log(IDENTICAL.format(path=item.path))
            return False
        if not force:
            log(SKIPPING.format(path=item.path))
            return True
        log(OVERWRITING.format(path=item.path))
        path.unlink()
    elif path.exists():
        raise TwelveError(NOT_A_FILE.format(path=item.path), hint=CANNOT_WRITE_HINT)
    else:
        log(CREATING.format(path=item.path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, item.mode)
    with os.fdopen(fd, "w") as f:
        f.write(item.text)
    os.chmod(path, item.mode)  # the umask must not take the x bit of bin/migrate
    return False


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
