"""The release being booted, as the launcher described it: the RELEASE_* variables, and
releases/VSN with its manifest (release.json). Read by ``boot`` and by every command.
"""
from __future__ import annotations

import os
import sys

from twelve.runtime import jsonc
from twelve.runtime.errors import BootError


class ReleaseInfo:
    """The release being booted, as the launcher exported it. (A plain class with str paths:
    the control commands are timed in milliseconds, and dataclasses or pathlib cost several to
    import.)"""

    __slots__ = ("root", "name", "vsn", "prog", "tmp", "environ", "_manifest")

    def __init__(self, *, root: str, name: str, vsn: str, prog: str, tmp: str,
                 environ: dict) -> None:
        self.root, self.name, self.vsn, self.prog, self.tmp = root, name, vsn, prog, tmp
        self.environ = environ
        self._manifest = None

    def __repr__(self) -> str:
        return f"ReleaseInfo(root={self.root!r}, name={self.name!r}, vsn={self.vsn!r})"

    @property
    def version_dir(self) -> str:
        return os.path.join(self.root, "releases", self.vsn)

    @property
    def manifest(self) -> dict:
        """releases/VSN/release.json, read once."""
        cached = self._manifest
        if cached is None:
            path = os.path.join(self.version_dir, "release.json")
            try:
                with open(path, "rb") as f:
                    cached = jsonc.loads(f.read())
            except FileNotFoundError:
                raise BootError(f"{path} is missing: this is not a complete release",
                                hint="Rebuild it with `twelve release`, or set RELEASE_VSN to "
                                     "a version under releases/.") from None
            self._manifest = cached
        return cached

    @property
    def launcher(self) -> str:
        """bin/NAME as first invoked, through any `current` symlink, so execs of it (restart,
        daemon) follow a symlink switched to a new version."""
        return self.environ.get("RELEASE_BIN") or os.path.join(self.root, "bin", self.name)


def release_from_environ(environ: dict) -> ReleaseInfo:
    try:
        root = environ["RELEASE_ROOT"]
        name, vsn = environ["RELEASE_NAME"], environ["RELEASE_VSN"]
    except KeyError as e:
        raise BootError(f"{e.args[0]} is not set: start the release through its bin/ script",
                        hint="e.g. _build/prod/rel/NAME/bin/NAME start") from None
    releases = os.path.join(root, "releases")
    if not vsn or "/" in vsn or not os.path.isdir(os.path.join(releases, vsn)):
        try:
            versions = sorted(v for v in os.listdir(releases)
                              if os.path.isfile(os.path.join(releases, v, "release.json")))
        except OSError:
            versions = []
        raise BootError(f"no version {vsn!r} in {releases} "
                        f"(it has: {', '.join(versions) or 'none'})",
                        hint="Set RELEASE_VSN to one of them, or write one into "
                             "releases/CURRENT.")
    return ReleaseInfo(root=root, name=name, vsn=vsn, prog=environ.get("RELEASE_PROG", name),
                       tmp=environ.get("RELEASE_TMP") or os.path.join(root, "tmp"),
                       environ=environ)


def check_python(release: ReleaseInfo) -> None:
    wanted = release.manifest.get("requires_python")
    have = "%d.%d" % sys.version_info[:2]
    if wanted and wanted != have:
        raise BootError(f"this release needs Python {wanted}, but {sys.executable} is {have}",
                        hint="Install Python " + wanted + " on this machine, or build the "
                             "release with include_python = true (the default).")
