"""What a default release (strip = true) ships and what it still shows: the standard library
imported from python/lib/pythonXY.zip, the locked packages as .pyc only, the app's own sources
(a traceback from its code shows the line), and the keep_stdlib / keep_sources settings.
strip = false is covered in test_build_failures (it keeps every source)."""
from __future__ import annotations

import re
import subprocess
import zipfile

import pytest

from twelve.builder import stdlib as stdlib_zip

from conftest import EXAMPLES, copy_project, release_env, twelve

pytestmark = pytest.mark.slow


def run(release, *args, tmp_path, **env):
    return subprocess.run([str(release / "bin" / "hello"), *args],
                          env=release_env(tmp_path, **env), capture_output=True, text=True,
                          timeout=120)


def test_the_standard_library_is_imported_from_the_zip(hello_release, tmp_path):
    proc = run(hello_release, "eval", "import asyncio, email.message, ssl, sqlite3; "
               "print(asyncio.__file__); print(email.message.__file__)", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    asyncio_file, email_file = proc.stdout.split()
    assert asyncio_file == str(hello_release / "python/lib/python311.zip/asyncio/__init__.pyc")
    assert email_file.startswith(str(hello_release / "python/lib/python311.zip/"))
    stdlib = hello_release / "python" / "lib" / "python3.11"
    beside = {p.name.removesuffix(".pyc") for p in stdlib.iterdir()} - stdlib_zip.HOT
    assert sorted(beside) == ["lib-dynload", "os", "site-packages", "venv"]


def test_the_standard_library_has_no_docstrings_the_rest_keeps_theirs(hello_release, tmp_path):
    # help() still works; a locked package and the app keep their docstrings.
    proc = run(hello_release, "eval",
               "import json, email.message, pydoc, flask, hello.web as web; "
               "print(json.dumps.__doc__, email.message.Message.__doc__); "
               "print(bool(flask.Flask.__doc__), bool(web.__doc__)); "
               "print('dumps(obj, *' in pydoc.plain(pydoc.render_doc(json.dumps)))",
               tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["None", "None", "True", "True", "True"]


def test_the_command_paths_modules_are_files_beside_the_zip(hello_release, tmp_path):
    proc = run(hello_release, "eval", "import pathlib, urllib.parse, json.decoder, email.parser;"
               "print(pathlib.__file__, json.decoder.__file__, email.parser.__file__)",
               tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    stdlib = hello_release / "python" / "lib" / "python3.11"
    assert proc.stdout.split() == [str(stdlib / "pathlib.pyc"),
                                   str(stdlib / "json" / "decoder.pyc"),
                                   str(stdlib.parent / "python311.zip" / "email" / "parser.pyc")]
    with zipfile.ZipFile(stdlib.parent / "python311.zip") as zf:
        zipped = {name.split("/")[0].removesuffix(".pyc") for name in zf.namelist()}
    assert zipped & stdlib_zip.HOT == set()
    assert {p.name.removesuffix(".pyc") for p in stdlib.iterdir()} >= stdlib_zip.HOT


def test_a_traceback_from_the_apps_own_code_shows_its_source_line(hello_release, tmp_path):
    # No migration ran: the app's count_visit() fails inside SQLAlchemy (no such table).
    proc = run(hello_release, "eval", "from hello import db; db.count_visit()",
               tmp_path=tmp_path)
    assert proc.returncode == 1
    frame = re.search(r'File "[^"]*lib/hello/db\.py", line \d+, in count_visit\n(.*)\n',
                      proc.stderr)
    assert frame, proc.stderr
    assert frame.group(1).strip().startswith("conn.execute(update(counters)"), proc.stderr
    assert 'lib/sqlalchemy/engine/base.py", line' in proc.stderr   # sourceless: no line


def test_locked_packages_ship_bytecode_only(hello_release, tmp_path):
    lib = hello_release / "lib"
    assert (lib / "flask" / "app.pyc").is_file() and not (lib / "flask" / "app.py").exists()
    assert not list(lib.glob("*/tests")), "a dependency's test suite was shipped"
    assert not list(lib.rglob("*.pyi"))
    assert (lib / "hello" / "web.py").is_file(), "the app keeps its sources"
    proc = run(hello_release, "verify", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """The example (no asset step) keeping lib2to3 and itsdangerous' sources, its other
    locked packages compiled as python -OO does."""
    project = copy_project(EXAMPLES / "hello", tmp_path_factory.mktemp("kept") / "hello")
    pyproject = project / "pyproject.toml"
    text = re.sub(r"(?m)^steps\s*=.*\n", "", pyproject.read_text())
    pyproject.write_text(text.replace(
        "[tool.twelve]\n", "[tool.twelve]\nkeep_stdlib = [\"lib2to3\"]\n"
                           "keep_sources = [\"ItsDangerous\"]\noptimize = 2\n"))
    twelve("release", cwd=project, env={"TWELVE_ENV": "prod"})
    return project / "_build" / "prod" / "rel" / "hello"


def test_keep_stdlib_ships_a_module_left_out_by_default(kept, hello_release, tmp_path):
    code = "import lib2to3.pygram; print(lib2to3.pygram.__file__)"  # reads its grammar files
    assert run(hello_release, "eval", code, tmp_path=tmp_path).returncode == 1
    proc = run(kept, "eval", code, tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(kept / "python/lib/python3.11/lib2to3/pygram.py")


def test_keep_sources_ships_a_package_as_installed(kept, tmp_path):
    lib = kept / "lib"
    assert (lib / "itsdangerous" / "signer.py").is_file()
    assert list((lib / "itsdangerous" / "__pycache__").glob("signer.*.pyc"))
    assert not (lib / "itsdangerous" / "signer.pyc").exists()
    assert (lib / "flask" / "app.pyc").is_file() and not (lib / "flask" / "app.py").exists()
    proc = run(kept, "eval", "import inspect, itsdangerous; "
               "print(len(inspect.getsource(itsdangerous.Signer)) > 0)", tmp_path=tmp_path)
    assert (proc.returncode, proc.stdout.strip()) == (0, "True"), proc.stderr
    assert run(kept, "verify", tmp_path=tmp_path).returncode == 0


# The assert statements in a sourceless module's code, and whether its first class has a
# docstring.
COUNT_ASSERTS = """
import dis, importlib, inspect, marshal, sys, types
def walk(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from walk(const)
module = importlib.import_module(sys.argv[1])
with open(module.__file__, "rb") as f:
    code = marshal.loads(f.read()[16:])
asserts = sum(c.co_code[i] == dis.opmap["LOAD_ASSERTION_ERROR"]
              for c in walk(code) for i in range(0, len(c.co_code), 2))
first_class = next(v for v in vars(module).values()
                   if inspect.isclass(v) and v.__module__ == module.__name__)
print(asserts, first_class.__doc__ is not None)
"""


def test_optimize_compiles_the_locked_packages_as_python_OO_does(kept, hello_release, tmp_path):
    def count(release, module):
        proc = run(release, "eval", f"import sys; sys.argv = ['x', {module!r}]; "
                   f"exec({COUNT_ASSERTS!r})", tmp_path=tmp_path)
        assert proc.returncode == 0, proc.stderr
        asserts, documented = proc.stdout.split()
        return int(asserts), documented

    asserts, documented = count(hello_release, "jinja2.environment")  # strip alone keeps both
    assert asserts >= 5 and documented == "True"
    assert count(kept, "jinja2.environment") == (0, "False")
    # A kept package is as installed; the app's own code is never optimized.
    proc = run(kept, "eval", "import itsdangerous, hello.db as db, flask; "
               "print(bool(itsdangerous.Signer.__doc__), bool(db.heartbeat.__doc__), "
               "flask.Flask.__doc__)", tmp_path=tmp_path)
    assert proc.stdout.split() == ["True", "True", "None"], proc.stderr
    # SQLAlchemy reads its docstrings at import, guarded by asserts -OO removes with them.
    proc = run(kept, "eval", "import hello.release as r, hello.db as db; r.migrate(); "
               "db.count_visit(); db.count_visit(); print('counted')", tmp_path=tmp_path)
    assert (proc.returncode, proc.stdout.split()[-1:]) == (0, ["counted"]), proc.stderr
    assert run(kept, "verify", tmp_path=tmp_path).returncode == 0
