"""``bin/NAME verify``: the release on disk against its manifest, releases/VSN/release.json.

Owns which files and directories the manifest covers (``outside_manifest``: the builder writes
the manifest by this same rule) and the comparison: every file's sha256 and mode, every
symlink's target, and the directories. A directory is in the manifest through the entries
under it; one that holds none (an overlay's empty directory) has an entry of its own,
``{"dir": true}`` (``empty_directories``). So a directory the release did not ship — say
``lib/instance/``, which Flask's default ``instance_path`` makes an app create at boot — is
"extra" even when it is empty, and so is every file in it.
What is outside the manifest by design is never "extra": ``tmp/`` (the default RELEASE_TMP,
where the node keeps its control cookie), the other versions under ``releases/`` and
``release.json`` itself. A ``releases/COOKIE`` is extra: releases no longer ship one, so it is a
secret left over from an older release (a tarball extracted over it).
Standard library only; imported by the verify command alone.
"""
from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from twelve.runtime.errors import ERROR, TwelveError

ALL_WELL = "ok: {name} {vsn}: all {count} files match releases/{vsn}/release.json"
MISMATCH = "{name} {vsn} does not match releases/{vsn}/release.json: {summary}"
MISMATCH_HINT = ("The release was changed after it was built. Install it again from its "
                 "artifact ({name}-{vsn}.tar.gz, or `twelve release`) instead of editing it "
                 "in place.")
NO_FILE_LIST = "releases/{vsn}/release.json has no file list to verify against"
NO_FILE_LIST_HINT = "Rebuild the release with this version of twelve."
SHOWN = 50  # lines listed per kind of problem; the summary counts them all
KINDS = ("modified", "missing", "extra")


class VerifyError(TwelveError):
    """The release differs from its manifest (or has none to compare with)."""

    exit_code = ERROR


def outside_manifest(rel: str, version: str) -> bool:
    """Whether the file at ``rel`` (relative to the root) is left out of version's manifest;
    a directory is asked about as ``rel + "/"``."""
    if rel.startswith("tmp/"):
        return True
    if rel.startswith("releases/") and rel.count("/") >= 2:
        vsn = rel.split("/")[1]
        return vsn != version or rel == f"releases/{version}/release.json"
    return False


def release_files(root: Path, version: str) -> list[str]:
    """The files and symlinks under ``root`` that the manifest of ``version`` covers, sorted.
    Symlinks to directories are entries of their own and are not followed."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        links = [d for d in dirnames if (base / d).is_symlink()]
        for name in filenames + links:
            rel = (base / name).relative_to(root).as_posix()
            if not outside_manifest(rel, version):
                found.append(rel)
    return sorted(found)


def release_directories(root: Path, version: str) -> list[str]:
    """The directories under ``root`` (not symlinks to them) the manifest of ``version``
    covers, sorted."""
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        base = Path(dirpath)
        for name in dirnames:
            rel = (base / name).relative_to(root).as_posix()
            if not (base / name).is_symlink() and not outside_manifest(rel + "/", version):
                found.append(rel)
    return sorted(found)


def empty_directories(root: Path, version: str) -> list[str]:
    """The covered directories that hold no covered file, link or directory: the ones the
    manifest lists as ``{"dir": true}``. One walk: a directory inside an uncovered one is
    uncovered too, so one that holds anything covered holds it directly."""
    covered, holding = [], set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        held = any(not outside_manifest(prefix + name, version) for name in filenames)
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                held = held or not outside_manifest(prefix + name, version)
            elif not outside_manifest(prefix + name + "/", version):
                covered.append(prefix + name)
                held = True
        if held:
            holding.add(prefix[:-1])
    return sorted(rel for rel in covered if rel not in holding)


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def compare(root: Path, version: str, expected: dict) -> dict[str, list[str]]:
    """Each file of ``root`` against ``expected`` (the manifest's "files"): {"modified": [...],
    "missing": [...], "extra": [...]}, one line per problem, sorted; a directory's line ends
    in "/"."""
    present = set(release_files(root, version))
    files = {rel for rel, entry in expected.items() if not entry.get("dir")}
    problems: dict[str, list[str]] = {kind: [] for kind in KINDS}
    missing_dirs, extra_dirs = _compare_directories(root, version, expected)
    problems["missing"] = sorted([*(files - present), *missing_dirs])
    problems["extra"] = sorted([*(present - files), *extra_dirs])
    both = sorted(present & files)
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 2)) as pool:
        for rel, difference in zip(both, pool.map(lambda r: _difference(root / r, expected[r]),
                                                  both)):
            if difference:
                problems["modified"].append(f"{rel} ({difference})")
    return problems


def _compare_directories(root: Path, version: str, expected: dict) -> tuple[list[str], list[str]]:
    """(the listed empty directories that are gone, the directories nothing in the manifest
    is under); of a tree of extra directories only the top one is named."""
    listed = {rel for rel, entry in expected.items() if entry.get("dir")}
    known = listed | {parent for rel in expected for parent in _parents(rel)}
    present = set(release_directories(root, version))
    missing = [f"{rel}/" for rel in listed - present]
    extra = [f"{rel}/" for rel in present - known
             if not _parents(rel) or _parents(rel)[-1] in known]
    return missing, extra


def _difference(path: Path, entry: dict) -> str | None:
    """What differs between ``path`` and its manifest entry, or None."""
    try:
        return _compare_entry(path, entry)
    except OSError as e:
        return f"cannot be read: {e.strerror}"


def _compare_entry(path: Path, entry: dict) -> str | None:
    st = path.lstat()
    if "link" in entry:
        if not stat.S_ISLNK(st.st_mode):
            return f"not a symlink to {entry['link']} any more"
        target = os.readlink(path)
        return None if target == entry["link"] else f"points to {target}, not {entry['link']}"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file any more"
    mode = f"{stat.S_IMODE(st.st_mode):04o}"
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if digest != entry.get("sha256"):
        return "content differs"
    if mode != entry.get("mode"):
        return f"mode {mode}, expected {entry.get('mode')}"
    return None


def verify_release(release) -> str:
    """The ``verify`` command: the all-is-well line, or a VerifyError listing every problem."""
    files = release.manifest.get("files")
    if not isinstance(files, dict):
        raise VerifyError(NO_FILE_LIST.format(vsn=release.vsn), hint=NO_FILE_LIST_HINT)
    problems = compare(Path(release.root), release.vsn, files)
    if not any(problems.values()):
        return ALL_WELL.format(name=release.name, vsn=release.vsn, count=len(files))
    summary = ", ".join(f"{len(lines)} {kind}" for kind, lines in problems.items() if lines)
    message = MISMATCH.format(name=release.name, vsn=release.vsn, summary=summary)
    raise VerifyError(message + "\n\n" + _listing(problems),
                      hint=MISMATCH_HINT.format(name=release.name, vsn=release.vsn))


def _listing(problems: dict[str, list[str]]) -> str:
    listed = []
    for kind, lines in problems.items():
        listed += [f"  {kind.ljust(8)}  {line}" for line in lines[:SHOWN]]
        if len(lines) > SHOWN:
            listed.append(f"  {kind.ljust(8)}  ... and {len(lines) - SHOWN} more")
    return "\n".join(listed)
