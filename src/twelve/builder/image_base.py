"""The base layer of the release's OCI image: what a process needs beside the release.

There is no base image (no Debian, no distroless): the release already carries its interpreter
and packages, so the image adds only

- the host's glibc: the loader and every library the release's ELF files (``python/``,
  ``lib/``) resolve outside the release, found with ``ldd`` as in ``elf.py`` — glibc always
  comes from the host (see ``elf.GLIBC_FAMILY``), so the image takes the build machine's;
- ``/bin/sh`` (the host's, dash on Debian) and its libraries: ``bin/NAME`` is a POSIX shell
  script that needs nothing but the shell's builtins;
- ``/etc/passwd`` and ``/etc/group`` with root and the unprivileged user ``app`` (uid/gid
  ``APP_UID``), whose home is ``/tmp``, the one writable place on a read-only root;
- ``/tmp``, mode 1777 (``RELEASE_TMP``, and a tmpfs or an ``emptyDir`` over it when run);
- CA certificates in ``/etc/ssl/certs/ca-certificates.crt`` (``SSL_CERT_FILE`` names them):
  certifi's ``cacert.pem`` when the release ships certifi (the locked version: refresh by
  upgrading certifi in the lock), else the build machine's Debian bundle (refresh with
  ``apt-get upgrade ca-certificates`` and rebuild the image).

Time zones are not added: an app that needs them depends on the ``tzdata`` package from PyPI,
which ``zoneinfo`` reads from ``lib/``.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from twelve.builder import elf
from twelve.errors import BuildError

APP_UID = 65532  # distroless's "nonroot": not root, not a host user's
APP_USER = "app"
HOME = "/tmp"
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PASSWD = ("root:x:0:0:root:/root:/sbin/nologin\n"
          f"{APP_USER}:x:{APP_UID}:{APP_UID}:{APP_USER}:{HOME}:/sbin/nologin\n")
GROUP = f"root:x:0:\n{APP_USER}:x:{APP_UID}:\n"
NSSWITCH = "passwd: files\ngroup: files\nhosts: files dns\n"

NO_SHELL = "no /bin/sh on the build machine: bin/NAME is a shell script the image needs"
NO_SHELL_HINT = "Install a POSIX shell (Debian: apt-get install dash) and build the image again."
NO_CA_BUNDLE = ("no CA certificates: the release has no certifi and {path} does not exist on "
                "the build machine")
NO_CA_BUNDLE_HINT = ("Add certifi to the project's dependencies, or install the Debian "
                     "bundle (apt-get install ca-certificates), and build the image again.")


@dataclass(frozen=True)
class Entry:
    """One member of a layer: a directory, a file (from ``path`` or ``data``), a symlink or a
    hard link (``link`` names the target)."""
    name: str
    kind: str  # "dir", "file", "symlink", "hardlink"
    mode: int = 0o755
    path: Path | None = None
    data: bytes | None = None
    link: str = ""


def base_entries(release_dir: Path) -> list[Entry]:
    """The base layer's members for the release at ``release_dir``, unsorted."""
    entries = [Entry("tmp", "dir", 0o1777), Entry("app", "dir"),
               Entry("etc/passwd", "file", 0o644, data=PASSWD.encode()),
               Entry("etc/group", "file", 0o644, data=GROUP.encode()),
               Entry("etc/nsswitch.conf", "file", 0o644, data=NSSWITCH.encode()),
               Entry(CA_BUNDLE, "file", 0o644, path=ca_bundle(release_dir))]
    shell = host_shell()
    entries.append(Entry("bin/sh", "file", 0o755, path=Path(os.path.realpath(shell))))
    entries += system_libraries([shell] + elf.elf_files(release_dir / "python")
                                + elf.elf_files(release_dir / "lib"), release_dir)
    return entries


def host_shell() -> Path:
    for candidate in ("/bin/sh", "/usr/bin/sh"):
        if os.path.exists(candidate):
            return Path(candidate)
    raise BuildError(NO_SHELL, hint=NO_SHELL_HINT)


def ca_bundle(release_dir: Path) -> Path:
    """certifi's bundle when the release ships certifi, else the host's Debian bundle."""
    certifi = release_dir / "lib" / "certifi" / "cacert.pem"
    if certifi.is_file():
        return certifi
    if HOST_CA_BUNDLE.is_file():
        return HOST_CA_BUNDLE
    raise BuildError(NO_CA_BUNDLE.format(path=HOST_CA_BUNDLE), hint=NO_CA_BUNDLE_HINT)


def ca_source(release_dir: Path) -> str:
    """Where the image's CA certificates come from, for the build's log."""
    path = ca_bundle(release_dir)
    return "certifi (lib/certifi/cacert.pem)" if path.is_relative_to(release_dir) else str(path)


def system_libraries(files: list[Path], release_dir: Path) -> list[Entry]:
    """The host libraries ``files`` load from outside the release, at the path the loader
    found each one; a second path to the same file is a hard link to the first."""
    inside = release_dir.resolve()
    found: dict[str, str] = {}  # image path -> host path
    for _path, entries in elf.ldd_many(files):
        for entry in entries:
            if entry.found and entry.path and not _inside(entry.path, inside):
                found.setdefault(entry.path.lstrip("/"), entry.path)
    written: dict[str, str] = {}  # real host path -> first image path
    result = []
    for name in sorted(found):
        real = os.path.realpath(found[name])
        if real in written:
            result.append(Entry(name, "hardlink", link=written[real]))
            continue
        written[real] = name
        mode = stat.S_IMODE(os.stat(real).st_mode) & 0o755
        result.append(Entry(name, "file", mode, path=Path(real)))
    return result


def _inside(path: str, root: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(root)

