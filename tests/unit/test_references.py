"""The modules a project names are looked up as the import system would, without running them."""
from __future__ import annotations

from pathlib import Path

import pytest

from twelve.builder import interpreter
from twelve.builder.references import _known, module_exists


@pytest.fixture
def lib(tmp_path) -> Path:
    (tmp_path / "hello").mkdir()
    (tmp_path / "hello" / "__init__.py").write_text("raise RuntimeError('never imported')\n")
    (tmp_path / "hello" / "web.py").write_text("app = None\n")
    (tmp_path / "hello" / "compiled.pyc").write_bytes(b"")  # strip = true: sourceless
    (tmp_path / "hello" / "fast.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    (tmp_path / "spaced" / "inner").mkdir(parents=True)  # namespace packages, no __init__
    (tmp_path / "spaced" / "inner" / "app.py").write_text("")
    (tmp_path / "single.py").write_text("")
    return tmp_path


@pytest.mark.parametrize("name", ["hello", "hello.web", "hello.compiled", "spaced.inner.app",
                                  "single"])
def test_modules_of_lib_are_found_without_running_them(lib, name):
    assert module_exists(name, [str(lib)])


def test_an_extension_module_is_found(lib):
    import importlib.machinery
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    (lib / "hello" / f"native{suffix}").write_bytes(b"")
    assert module_exists("hello.native", [str(lib)])


@pytest.mark.parametrize("name", ["nonexistent", "hello.wbe", "single.sub", "spaced.nothing",
                                  "hello..web", "hello.web-app", ""])
def test_missing_or_malformed_modules_are_not(lib, name):
    assert not module_exists(name, [str(lib)])


def test_the_standard_library_and_builtins_count():
    source = interpreter.find_source()
    search = [str(source.stdlib), str(source.lib_dynload)]
    assert module_exists("wsgiref.simple_server", search)
    assert module_exists("sys", search)
    assert not module_exists("sys.nothing", search)


def test_a_close_name_is_suggested_else_the_wheel_is_listed(lib):
    files = [lib / "hello" / "__init__.py", lib / "hello" / "web.py",
             lib / "hello-0.1.dist-info" / "RECORD"]
    assert _known("hello.wbe", lib, files) == " Did you mean hello.web?"
    assert _known("zzz", lib, files) == " The project's wheel holds: hello, hello.web."
    assert _known("zzz", lib, []) == ""
