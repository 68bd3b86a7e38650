"""The release being booted, as the launcher described it: the RELEASE_* variables, and
releases/VSN with its manifest (release.json). Read by ``boot`` and by every command.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from twelve.runtime.errors import BootError


class ReleaseInfo:
    """The release being booted, as the launcher exported it. (A plain class: the control
    commands are timed in milliseconds, and dataclasses costs several to import.)"""

    __slots__ = ("root", "name", "vsn", "prog", "tmp", "environ", "_manifest")

    def __init__(self, *, root: Path, name: str, vsn: str, prog: str, tmp: Path,
                 environ: dict) -> None:
        self.root, self.name, self.vsn, self.prog, self.tmp = root, name, vsn, prog, tmp
        self.environ = environ
        self._manifest = None

    def __repr__(self) -> str:
        return f"ReleaseInfo(root={self.root!r}, name={self.name!r}, vsn={self.vsn!r})"

    @property
    def version_dir(self) -> Path:
        return self.root / "releases" / self.vsn

    @property
    def manifest(self) -> dict:
        """releases/VSN/release.json, read once."""
        cached = self._manifest
        if cached is None:
            path = self.version_dir / "release.json"
            try:
                cached = json.loads(path.read_text())
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
        return self.environ.get("RELEASE_BIN") or str(self.root / "bin" / self.name)


def release_from_environ(environ: dict) -> ReleaseInfo:
    try:
        root = Path(environ["RELEASE_ROOT"])
        name, vsn = environ["RELEASE_NAME"], environ["RELEASE_VSN"]
    except KeyError as e:
        raise BootError(f"{e.args[0]} is not set: start the release through its bin/ script",
                        hint="e.g. _build/prod/rel/NAME/bin/NAME start") from None
    if not vsn or "/" in vsn or not (root / "releases" / vsn).is_dir():
        versions = sorted(p.parent.name for p in root.glob("releases/*/release.json"))
        raise BootError(f"no version {vsn!r} in {root / 'releases'} "
                        f"(it has: {', '.join(versions) or 'none'})",
                        hint="Set RELEASE_VSN to one of them, or write one into "
                             "releases/CURRENT.")
    return ReleaseInfo(root=root, name=name, vsn=vsn, prog=environ.get("RELEASE_PROG", name),
                       tmp=Path(environ.get("RELEASE_TMP") or root / "tmp"), environ=environ)


def check_python(release: ReleaseInfo) -> None:
    wanted = release.manifest.get("requires_python")
    have = "%d.%d" % sys.version_info[:2]
    if wanted and wanted != have:
        raise BootError(f"this release needs Python {wanted}, but {sys.executable} is {have}",
                        hint="Install Python " + wanted + " on this machine, or build the "
                             "release with include_python = true (the default).")
