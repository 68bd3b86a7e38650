"""The ``twelve`` command: parses the command line and calls one function per subcommand.

Errors are rendered here, once: a ``TwelveError`` becomes its message on stderr and its exit
code; nothing below this layer prints a traceback for a user's mistake.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from twelve import __version__
from twelve.errors import OK, TwelveError, UsageError

SECRET_DEFAULT_LENGTH = 64
SECRET_MIN_LENGTH = 32

BANNER = """\
Release created at {root}

    # To start your system
    {bin} start

Once the release is running:

    # To connect to it remotely
    {bin} remote

    # To stop it gracefully (you may also send SIGINT/SIGTERM)
    {bin} stop

To list all commands:

    {bin}
"""

IMAGE_WRITTEN = """\
Image {digest}
    {layout} (OCI layout, tag {tag})
    {archive} (oci-archive)

    # To run it with podman
    skopeo copy oci:{layout}:{tag} containers-storage:localhost/{name}:{tag}
    podman run --rm --read-only -p 4000:4000 -e RELEASE_COOKIE=... localhost/{name}:{tag}
"""


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or OK
    except TwelveError as e:
        print(e.render(), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twelve", description="Self-contained, 12-factor releases for Python web apps.",
        epilog="Exit codes: 0 ok, 1 error, 2 usage or invalid pyproject.toml, 78 invalid "
               "configuration. Docs: docs/ in the twelve repository.")
    parser.add_argument("--version", action="version", version=f"twelve {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")

    rel = sub.add_parser(
        "release", help="build a self-contained release in _build/<env>/rel/<name>",
        description="Build the project's release: the interpreter, the locked dependencies, "
                    "the app, bin/NAME and the runtime config, in _build/$TWELVE_ENV/rel/NAME. "
                    "TWELVE_ENV (default dev) selects config/<env>.py; use TWELVE_ENV=prod.")
    rel.add_argument("name", nargs="?", help="release name (default: the project's)")
    rel.add_argument("--path", help="output directory (default: _build/<env>/rel/<name>)")
    rel.add_argument("--version", dest="vsn", metavar="VSN",
                     help="release version (default: [project].version)")
    rel.add_argument("--overwrite", action="store_true",
                     help="replace an existing release of the same version without asking")
    rel.add_argument("--quiet", action="store_true", help="print only errors")
    rel.add_argument("--project", default=".", metavar="DIR",
                     help="the project's root (default: the current directory)")
    rel.set_defaults(func=cmd_release)

    img = sub.add_parser(
        "image", help="write the OCI image of a built release (no Docker daemon involved)",
        description="Write _build/<env>/NAME-VSN.oci (an OCI image layout tagged VSN) and "
                    "NAME-VSN.oci.tar (an oci-archive) from the release already built in "
                    "_build/$TWELVE_ENV/rel/NAME: no base image, layers for the interpreter, "
                    "the packages and the app, reproducible. The \"image\" step does the same "
                    "during `twelve release`. Load it with `skopeo copy oci:DIR:VSN "
                    "containers-storage:NAME:VSN`, push it with `skopeo copy` to a registry. "
                    "See docs/containers.md.")
    img.add_argument("--path", help="the release directory (default: _build/<env>/rel/<name>)")
    img.add_argument("--version", dest="vsn", metavar="VSN",
                     help="the release version (default: [project].version)")
    img.add_argument("--project", default=".", metavar="DIR",
                     help="the project's root (default: the current directory)")
    img.set_defaults(func=cmd_image)

    run = sub.add_parser(
        "run", help="run an alias from [tool.twelve.aliases]",
        description="Run each command of the alias NAME in order, in the project's root; stop "
                    "at the first failure with its exit code. A command may be another alias, "
                    "a twelve subcommand (`twelve digest static`) or a shell command.")
    run.add_argument("alias", metavar="NAME")
    run.add_argument("--project", default=".", metavar="DIR",
                     help="the project's root (default: the current directory)")
    run.set_defaults(func=cmd_run)

    sec = sub.add_parser(
        "gen.secret", help="print a new random secret (for SECRET_KEY_BASE and the like)",
        description=f"Print a cryptographically random, URL-safe secret of LENGTH characters "
                    f"(default {SECRET_DEFAULT_LENGTH}, at least {SECRET_MIN_LENGTH}).")
    sec.add_argument("length", nargs="?", default=str(SECRET_DEFAULT_LENGTH))
    sec.set_defaults(func=cmd_gen_secret)

    from twelve.assets import commands as assets_commands
    assets_commands.register(sub)
    from twelve.gen import commands as gen_commands
    gen_commands.register(sub)
    return parser


def cmd_release(args: argparse.Namespace) -> int:
    from twelve.builder import pipeline
    from twelve.builder.release import DEFAULT_ENV, make_release
    from twelve.project import load_project

    project = load_project(Path(args.project))
    release = make_release(project, name=args.name, version=args.vsn,
                           env=os.environ.get("TWELVE_ENV") or DEFAULT_ENV, path=args.path)
    log = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    release = pipeline.build(release, log=log, overwrite=args.overwrite, confirm=_confirm,
                             quiet=args.quiet)
    if not args.quiet:
        root = release.display_root
        print("\n" + BANNER.format(root=root, bin=os.path.join(root, "bin", release.name)))
    return OK


def cmd_image(args: argparse.Namespace) -> int:
    from twelve.builder import image
    from twelve.builder.release import DEFAULT_ENV, make_release
    from twelve.project import load_project

    release = make_release(load_project(Path(args.project)), name=None, version=args.vsn,
                           env=os.environ.get("TWELVE_ENV") or DEFAULT_ENV, path=args.path)
    print(f"* writing the OCI image of {release.display_root}", flush=True)
    built = image.image_existing(release, log=lambda line: print(line, flush=True))
    print(IMAGE_WRITTEN.format(layout=os.path.relpath(built.layout),
                               archive=os.path.relpath(built.archive),
                               digest=built.manifest_digest, tag=release.version,
                               name=release.name), flush=True)
    return OK


def cmd_run(args: argparse.Namespace) -> int:
    from twelve.aliases import run_alias
    from twelve.builder import progress
    from twelve.project import load_project

    watching = progress.Progress(lambda line: print(line, flush=True))
    with progress.using(watching):
        run_alias(load_project(Path(args.project)), args.alias, log=watching.show)
    return OK


def _confirm(question: str) -> bool:
    """Ask on a terminal; without one there is nobody to ask, so the answer is no."""
    if not sys.stdin.isatty():
        return False
    answer = input(f"{question} [Yn] ").strip().lower()
    return answer in ("", "y", "yes")


def cmd_gen_secret(args: argparse.Namespace) -> int:
    try:
        length = int(args.length)
    except ValueError:
        raise UsageError(f"LENGTH must be an integer, got {args.length!r}",
                         hint="usage: twelve gen.secret [LENGTH]") from None
    if length < SECRET_MIN_LENGTH:
        raise UsageError(f"a secret of {length} characters is too short; use at least "
                         f"{SECRET_MIN_LENGTH}", hint="usage: twelve gen.secret [LENGTH]")
    # token_urlsafe gives ~1.3 characters per byte; cut to the exact length asked for.
    print(secrets.token_urlsafe(length)[:length])
    return OK


if __name__ == "__main__":
    sys.exit(main())
