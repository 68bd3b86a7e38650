"""The standard library as a release ships it: without the modules a server rarely needs
(``OPTIONAL_STDLIB``, unless ``keep_stdlib`` names them), and with ``strip`` as one zip of
sourceless ``.pyc`` (``lib/python3XY.zip``), which CPython puts on ``sys.path`` before
``lib/python3.X/`` and imports from natively (zipimport is frozen into the interpreter).

The zip is written once per cached interpreter (``twelve.builder.interpreter``), by the
interpreter it copies (the same compiler), and linked into each release; what a zip cannot
hold stays a directory (``NOT_ZIPPED``), and so does every optional module, so that a release
can keep one without another zip; the modules in the zip have no docstrings
(``twelve.builder.undoc``). docs/releases.md ("Size") has the measurements behind each choice.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from twelve.builder import undoc
from twelve.builder.depcache import link_tree
from twelve.builder.pythons import Python as Source
from twelve.project import OPTIONAL_STDLIB

ZIP_FILE = "stdlib.zip"   # in the cache; a release links it to lib/pythonXY.zip (strip = true)
# Left out of the zip, shipped as directories: what reads its own files by path, and what a
# release may keep (keep_stdlib), which must be left out of a zip built once for all releases.
NOT_ZIPPED: dict[str, str] = {
    "lib-dynload": "extension modules: the loader maps files, never zip members",
    "site-packages": "the (empty) site directory",
    "venv": "creates environments by copying its scripts/ directory, read as files",
}
# Beside the zip, as sourceless .pyc files: what the interpreter's start leaves to import for
# every control command's client, the runtime config's evaluation and what a runtime.py
# commonly imports (pathlib, urllib.parse, json); a package goes whole (its __path__ is one
# directory). zipimport reads and unpacks a member at each import, in Python: for these ~25
# modules that cost every rpc and eval 4-6 ms deflated, 2-3 ms stored, against FileFinder's
# cached directory listing. tests/unit/test_stdlib_zip.py keeps the set complete.
HOT = frozenset({
    "__future__", "_weakrefset", "collections", "contextlib", "copy", "copyreg", "enum",
    "fnmatch", "functools", "heapq", "ipaddress", "json", "keyword", "operator", "pathlib",
    "re", "reprlib", "struct", "types", "urllib", "warnings", "weakref",
})
HOT_DIR = "stdlib.hot"   # in the cache, beside stdlib.zip: the HOT modules' .pyc files
LANDMARK = "os.pyc"   # beside the zip too: CPython finds its prefix by lib/python3.X/os.py[c]
# Run under -X no_debug_ranges: a .pyc without column tables is ~7% smaller and compresses
# ~25% better; the tables only place the ^^^ under a traceback's source line, and a module in
# the zip has no source line to show. Deflated at zlib's level 6, the tarball's: level 9 makes a
# zip 0.04 MB smaller (of 3.1 MB) for 0.9 s more of every cold build's CPU. The modules compile
# in forked workers, one per core (up to 4), each an interleaved share of the sorted list: a
# module's .pyc depends on its source alone (the split changes no byte), and the zip is
# written by the first process, in name order. Without docstrings (twelve.builder.undoc): the
# zip is 0.6 MB smaller, and only help() on the standard library misses them.
ZIP_SCRIPT = undoc.script(r"""
import os, sys
entries = [line.split("\t", 1) for line in sys.stdin.read().splitlines()]  # relative, source
import marshal, zipfile
from importlib._bootstrap_external import _code_to_hash_pyc
from importlib.util import source_hash
out, hot_dir, prefix, hot = sys.argv[1], sys.argv[2], sys.argv[3], set(sys.argv[4].split())

def compiled(share):
    done = []
    for rel, path in share:
        with open(path, "rb") as f:
            data = f.read()
        if rel.endswith(".py"):
            code = undoc(compile(data, f"{prefix}/{rel}", "exec", dont_inherit=True))
            data = bytes(_code_to_hash_pyc(code, source_hash(data), False))
        done.append(data)
    return done

workers = max(1, min(len(os.sched_getaffinity(0)), 4, len(entries) // 50 or 1))
children = []
for i in range(1, workers):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            with os.fdopen(write, "wb") as f:
                f.write(marshal.dumps(compiled(entries[i::workers])))
        except BaseException:
            import traceback
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    os.close(write)
    children.append((pid, read))
data = [b""] * len(entries)
data[0::workers] = compiled(entries[0::workers])
for i, (pid, read) in enumerate(children, 1):
    with os.fdopen(read, "rb") as f:
        share = f.read()
    if os.waitpid(pid, 0)[1] != 0:
        sys.exit(1)
    data[i::workers] = marshal.loads(share)
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
    for (rel, _), member in zip(entries, data):
        rel = rel + "c" if rel.endswith(".py") else rel
        if rel.split("/")[0].removesuffix(".pyc") in hot:
            os.makedirs(os.path.dirname(os.path.join(hot_dir, rel)), exist_ok=True)
            with open(os.path.join(hot_dir, rel), "wb") as f:
                f.write(member)
            continue
        info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr, info.compress_type = 0o644 << 16, zipfile.ZIP_DEFLATED
        zf.writestr(info, member, compresslevel=6)
""")


def zip_name(source: Source) -> str:
    """The zip CPython puts on sys.path: lib/python3.11 → python311.zip."""
    return source.lib_name.replace(".", "") + ".zip"


def start_zip(source: Source, stage: Path, tree: dict[str, Path | None]) -> subprocess.Popen:
    """Start writing ``stage/stdlib.zip`` from the standard library ``tree`` (relative path →
    the source's file, None for a directory, as ``interpreter.stdlib_tree`` lists it): every
    module as a sourceless .pyc (package data beside them), in name order with fixed times,
    so it is reproducible, except the ``HOT`` modules, written as files under
    ``stage/HOT_DIR``. Left out: ``NOT_ZIPPED`` and the modules a release may keep
    (``OPTIONAL_STDLIB``). It reads the source's files, so it runs while they are copied.

    Run by the source interpreter, whose compiler is its copy's (the copy may not run yet:
    its RUNPATHs are set meanwhile), isolated and with -B: whatever it imports leaves no
    bytecode anywhere. Its output (the reason, if it fails) is in ``stdout``."""
    skip = {*NOT_ZIPPED, *OPTIONAL_STDLIB, *(f"{m}.py" for m in OPTIONAL_STDLIB)}
    lines = [f"{rel}\t{path}" for rel, path in sorted(tree.items(), key=_parts)
             if path is not None and rel.split("/")[0] not in skip]
    proc = subprocess.Popen(
        [str(source.executable), "-E", "-s", "-B", "-X", "no_debug_ranges", "-c", ZIP_SCRIPT,
         str(stage / ZIP_FILE), str(stage / HOT_DIR), f"lib/{zip_name(source)}",
         " ".join(sorted(HOT))], env={}, cwd=stage, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        proc.stdin.write("\n".join(lines))   # read whole once undoc's imports ran (dis, types)
        proc.stdin.close()
    except BrokenPipeError:   # it failed at once: its output says why
        pass
    return proc


def _parts(item: tuple[str, Path | None]) -> list[str]:
    return item[0].split("/")   # the order of sorted Paths: "a/b" before "a-b/c"


def leave_out_optional(tree: Path, keep: tuple[str, ...]) -> None:
    """Unlink the ``OPTIONAL_STDLIB`` modules not in ``keep`` from a release's copy."""
    for module in OPTIONAL_STDLIB:
        if module not in keep:
            _remove(tree / module)
            _remove(tree / f"{module}.py")


def shipped_as_files(tree: Path, keep: tuple[str, ...]) -> list[Path]:
    """What a release with the zip still ships from the tree, to be compiled: the landmark's
    source (``os.py``), ``NOT_ZIPPED`` and the optional modules it keeps."""
    names = ["os.py", *NOT_ZIPPED, *(f"{m}{suffix}" for m in keep for suffix in ("", ".py"))]
    return [tree / name for name in names if (tree / name).exists()]


def use_zipped_stdlib(prepared: Path, tree: Path) -> None:
    """Replace the standard library's modules by the cache's zip and its ``HOT`` .pyc files,
    except what is not zipped (``NOT_ZIPPED``, the kept optional modules); os.pyc stays as the
    prefix landmark."""
    tag = "cpython-" + tree.name.removeprefix("python").replace(".", "")  # python3.11: -311
    landmark = tree / "__pycache__" / f"os.{tag}.pyc"
    if landmark.is_file():
        os.link(landmark, tree / LANDMARK)
    for child in list(tree.iterdir()):
        if child.name not in NOT_ZIPPED and child.name != LANDMARK and \
                child.name.removesuffix(".py") not in OPTIONAL_STDLIB:
            _remove(child)
    zipped = tree.parent / (tree.name.replace(".", "") + ".zip")
    try:
        os.link(prepared / ZIP_FILE, zipped)
    except OSError:   # another file system
        shutil.copy2(prepared / ZIP_FILE, zipped)
    link_tree(prepared / HOT_DIR, tree)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
