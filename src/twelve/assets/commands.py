"""The ``twelve digest`` and ``twelve digest.clean`` subcommands: ``register(sub)`` adds them
to the ``twelve`` parser; each parses its arguments, calls ``twelve.assets`` and prints one
summary. Errors are ``TwelveError``s, rendered by ``twelve.cli``."""
from __future__ import annotations

import argparse
import errno
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from twelve.errors import OK, BuildError, UsageError
from twelve.runtime.static import DEFAULT_PREFIX

DEFAULT_KEEP = 2
DEFAULT_AGE = 3600

NO_PROJECT = ("no DIR given and no pyproject.toml in {root} to read tool.twelve.static_dir "
              "from")
NO_PROJECT_HINT = "usage: twelve {command} DIR (or run it in the project's root)"
NEGATIVE = "{option} must be 0 or more, got {value}"
NO_JOBS = "--jobs must be 1 or more, got {value}"
DIGESTED = "* digested {files} files in {directory} ({how}) → {manifest}"
NOTHING_TO_CLEAN = "* nothing to clean in {directory}"
CLEANED = "* removed {versions} old digested versions ({files} files) from {directory}"
CLEANED_ALL = "* removed {files} digested and compressed files and the manifest from {directory}"
OS_ERROR = "{what} failed: {reason}{where}"
NO_SPACE_HINT = "Free some space and run it again; files already written are complete."


def register(sub: argparse._SubParsersAction) -> None:
    digest = sub.add_parser(
        "digest", help="fingerprint static files (app-<md5>.css), compress them, write "
                       "cache_manifest.json",
        description="Copy every file of DIR to NAME-<md5>.EXT, write gzip (and, with the "
                    "brotli package, brotli) siblings of compressible files, rewrite url() in "
                    "CSS and sourceMappingURL in CSS/JS to digested names, and record it all "
                    "in DIR/cache_manifest.json (Phoenix's format). Idempotent.")
    digest.add_argument("directory", nargs="?", metavar="DIR",
                        help="the static directory (default: tool.twelve.static_dir)")
    digest.add_argument("-o", "--output", metavar="OUT",
                        help="write the digested files, originals and manifest to OUT "
                             "instead of DIR")
    digest.add_argument("--prefix", default=DEFAULT_PREFIX, metavar="URL",
                        help="the URL DIR is served at, to digest root URLs such as url("
                             f"{DEFAULT_PREFIX}/logo.png) in CSS (default: {DEFAULT_PREFIX})")
    digest.add_argument("--no-compile", dest="compressed", action="store_false",
                        help="fingerprint only: write no .gz/.br siblings")
    digest.add_argument("-j", "--jobs", type=int, metavar="N",
                        help="threads to use (default: one per CPU)")
    _project_option(digest)
    digest.set_defaults(func=cmd_digest)

    clean = sub.add_parser(
        "digest.clean", help="remove old digested files",
        description="Remove digested files of DIR that are no longer needed: the latest "
                    "version of each file stays, and so do the KEEP newest older versions and "
                    "every version younger than AGE seconds. --all removes every digested and "
                    "compressed file and the manifest.")
    clean.add_argument("directory", nargs="?", metavar="DIR",
                       help="the static directory (default: tool.twelve.static_dir)")
    clean.add_argument("--keep", type=int, default=DEFAULT_KEEP, metavar="N",
                       help=f"older versions to keep (default: {DEFAULT_KEEP})")
    clean.add_argument("--age", type=int, default=DEFAULT_AGE, metavar="SECONDS",
                       help=f"keep versions younger than this (default: {DEFAULT_AGE})")
    clean.add_argument("--all", action="store_true",
                       help="remove all digested and compressed files and the manifest")
    _project_option(clean)
    clean.set_defaults(func=cmd_digest_clean)


def _project_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", default=".", metavar="DIR",
                        help="the project's root, for the default DIR (default: .)")


def cmd_digest(args: argparse.Namespace) -> int:
    from twelve.assets.digest import digest_directory
    from twelve.assets.manifest import build_time

    if args.jobs is not None and args.jobs < 1:
        raise UsageError(NO_JOBS.format(value=args.jobs), hint="usage: twelve digest [DIR] [-j N]")
    directory = static_directory(args, "digest")
    mtime = build_time(os.environ)  # SOURCE_DATE_EPOCH: a bad value fails before any work
    with _os_errors("digest"):
        report = digest_directory(directory, Path(args.output) if args.output else None,
                                  prefix=args.prefix, compressed=args.compressed,
                                  jobs=args.jobs, mtime=mtime)
    how = ", ".join(report.encodings) if report.encodings else "not compressed"
    print(DIGESTED.format(files=report.files, directory=_show(report.output), how=how,
                          manifest=_show(report.manifest)), flush=True)
    return OK


def cmd_digest_clean(args: argparse.Namespace) -> int:
    from twelve.assets import manifest

    for option in ("keep", "age"):
        if getattr(args, option) < 0:
            raise UsageError(NEGATIVE.format(option=f"--{option}", value=getattr(args, option)),
                             hint="usage: twelve digest.clean [DIR] [--keep N] [--age SECONDS]")
    directory = static_directory(args, "digest.clean")
    if not directory.is_dir():
        from twelve.assets.digest import NO_DIRECTORY, NO_DIRECTORY_HINT
        raise BuildError(NO_DIRECTORY.format(path=directory), hint=NO_DIRECTORY_HINT)
    with _os_errors("digest.clean"):
        if args.all:
            result = manifest.clean_all(directory)
            message = CLEANED_ALL if result.files else NOTHING_TO_CLEAN
        else:
            result = manifest.clean(directory, keep=args.keep, age=args.age)
            message = CLEANED if result.removed else NOTHING_TO_CLEAN
    print(message.format(versions=len(result.removed), files=result.files,
                         directory=_show(directory)), flush=True)
    return OK


def static_directory(args: argparse.Namespace, command: str) -> Path:
    """DIR as given, else the project's ``static_dir``."""
    if args.directory:
        return Path(args.directory)
    from twelve.project import load_project

    root = Path(args.project)
    if not (root / "pyproject.toml").is_file():
        raise UsageError(NO_PROJECT.format(root=root.resolve()),
                         hint=NO_PROJECT_HINT.format(command=command))
    return load_project(root).static_dir


@contextmanager
def _os_errors(what: str) -> Iterator[None]:
    """OSError → one BuildError naming the file and the reason."""
    try:
        yield
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise BuildError(OS_ERROR.format(what=what, reason=error.strerror or error, where=where),
                         hint=NO_SPACE_HINT if error.errno == errno.ENOSPC else None) from None


def _show(path: Path) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative
