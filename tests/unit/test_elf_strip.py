"""Stripping never changes whether an ELF file loads: real files, real strip, real patchelf.

A library patchelf rewrote (what auditwheel does to every ``*.libs/`` library of a manylinux
wheel) is one GNU strip re-lays out; it must ship byte-for-byte as it was. A library with
debug sections loses them and keeps every mapped byte.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from twelve.builder import elf, interpreter

pytestmark = pytest.mark.skipif(shutil.which("strip") is None or shutil.which("objcopy") is None,
                                reason="binutils is not installed (scripts/system-deps does)")


def host_library() -> Path:
    """The smallest shared library of the interpreter running the tests (lib-dynload)."""
    dynload = interpreter.find_source().lib_dynload
    files = elf.elf_files(dynload)
    assert files, f"no ELF file in {dynload}"
    return min(files, key=lambda p: p.stat().st_size)


def sections(path: Path) -> str:
    return subprocess.run(["objdump", "-h", str(path)], capture_output=True, text=True,
                          check=True).stdout


def loads(path: Path) -> bool:
    try:
        ctypes.CDLL(str(path), mode=os.RTLD_LAZY)
    except OSError:
        return False
    return True


@pytest.fixture
def with_debug(tmp_path) -> Path:
    """A copy of a host library with a debug section added (objcopy, binutils)."""
    payload = tmp_path / "payload"
    payload.write_bytes(b"debug info " * 1000)
    path = tmp_path / "libdebug.so"
    subprocess.run(["objcopy", "--add-section", f".debug_twelve={payload}", str(host_library()),
                    str(path)], check=True)
    assert ".debug_twelve" in sections(path)
    return path


@pytest.fixture
def patched(tmp_path) -> Path:
    """A copy of a host library whose RUNPATH patchelf grew, as auditwheel does: patchelf
    adds a segment, which GNU strip then moves."""
    path = tmp_path / "libpatched.so"
    shutil.copy2(host_library(), path)
    subprocess.run([elf.find_patchelf(), "--set-rpath", "$ORIGIN/" + "x" * 600, str(path)],
                   check=True)
    return path


def test_strip_moves_a_patchelf_segment_when_run_alone(patched, tmp_path):
    """The hazard itself, so the next test is not vacuous: GNU strip changes what is mapped."""
    out = tmp_path / "stripped.so"
    subprocess.run(["strip", "--strip-debug", "-o", str(out), str(patched)], check=True)
    assert elf.loaded_image(out) != elf.loaded_image(patched)


def test_a_file_strip_would_change_ships_as_it_was(patched):
    original = patched.read_bytes()
    logged = []
    kept = elf.strip_debug_info([patched], logged.append)
    assert kept == [patched]
    assert patched.read_bytes() == original
    assert loads(patched)
    assert "1 ELF files keep their debug info (libpatched.so)" in logged[0]
    assert sorted(p.name for p in patched.parent.iterdir()) == ["libpatched.so"]  # no copies


def test_debug_sections_go_and_every_mapped_byte_stays(with_debug):
    image, size = elf.loaded_image(with_debug), with_debug.stat().st_size
    assert elf.strip_debug_info([with_debug], print) == []
    assert ".debug_twelve" not in sections(with_debug)
    assert with_debug.stat().st_size < size
    assert elf.loaded_image(with_debug) == image
    assert loads(with_debug)


def test_a_hard_linked_original_is_never_written(with_debug, tmp_path):
    cached = tmp_path / "cache-entry.so"
    os.link(with_debug, cached)
    before = cached.read_bytes()
    elf.strip_debug_info([with_debug], print)
    assert cached.read_bytes() == before
    assert with_debug.stat().st_ino != cached.stat().st_ino


def test_a_file_that_is_not_elf_is_never_touched(tmp_path):
    fake = tmp_path / "fake.so"
    fake.write_bytes(b"\x7fELF" + b"\0" * 10)  # the magic, and nothing a loader could read
    assert elf.loaded_image(fake) is None
    assert elf.strip_debug_info([fake], print) == [fake]
    assert fake.read_bytes() == b"\x7fELF" + b"\0" * 10


def test_the_loaded_image_sees_a_changed_mapped_byte(with_debug, tmp_path):
    image = elf.loaded_image(with_debug)
    data = bytearray(with_debug.read_bytes())
    data[0x80] ^= 0xFF  # inside the first segment (the program headers follow the ELF header)
    changed = tmp_path / "changed.so"
    changed.write_bytes(bytes(data))
    assert elf.loaded_image(changed) != image


def test_a_file_without_debug_sections_is_neither_copied_nor_rewritten(with_debug, tmp_path):
    bare = tmp_path / "libbare.so"
    subprocess.run(["strip", "--strip-debug", "-o", str(bare), str(with_debug)], check=True)
    linked = tmp_path / "cache-entry.so"
    os.link(bare, linked)
    assert not elf.has_debug_sections(bare)
    assert elf.strip_debug_info([bare], print) == []
    assert bare.stat().st_ino == linked.stat().st_ino  # not replaced by a stripped copy


def test_debug_sections_are_read_as_objdump_reads_them(with_debug, tmp_path):
    """Against binutils on real files: the host's extension modules (built with or without
    -g), one with a debug section added, and the same stripped."""
    bare = tmp_path / "libbare.so"
    subprocess.run(["strip", "--strip-debug", "-o", str(bare), str(with_debug)], check=True)
    files = [with_debug, bare, *elf.elf_files(interpreter.find_source().lib_dynload)[:20]]
    for path in files:
        names = [line.split()[1] for line in sections(path).splitlines()
                 if line.strip()[:1].isdigit()]
        expected = any(name.startswith((".debug", ".zdebug", ".stab")) for name in names)
        assert elf.has_debug_sections(path) == expected, path
    assert elf.has_debug_sections(with_debug) and not elf.has_debug_sections(bare)


def test_a_truncated_64_bit_header_is_not_elf_to_read(tmp_path):
    short = tmp_path / "short.so"
    short.write_bytes(host_library().read_bytes()[:60])   # the identification, not the header
    assert elf.loaded_image(short) is None and elf.program_interpreter(short) is None
    assert elf.strip_debug_info([short], print) == [short]
