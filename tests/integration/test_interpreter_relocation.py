"""The real thing: prepare the interpreter twelve runs on, copy it around, and run it with an
empty environment, then with the source installation and every system Python hidden."""
from __future__ import annotations

import email
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from twelve.builder import assemble, deps, elf, stdlib
from twelve.builder.interpreter import (DESCRIPTION, check_relocatable, copy_interpreter,
                                      find_source, prepare_interpreter,
                                      shaped_interpreter)

pytestmark = pytest.mark.slow

SRC = Path(__file__).resolve().parents[2] / "src"
CLEAN_ENV = ["env", "-i", "PATH=/usr/bin:/bin"]

# Runs inside the copied interpreter; prints what it saw as JSON.
PROBE = r"""
import json, os, sys
import ssl, hashlib, sqlite3, ctypes, lzma, bz2, zlib, decimal, uuid, readline, curses
import _ssl, _hashlib, _sqlite3, _ctypes, _lzma, _bz2, _uuid, _curses, _decimal

ssl.create_default_context()
import _sha256
assert hashlib.sha256.__name__ == "openssl_sha256", hashlib.sha256
assert hashlib.sha256(b"twelve").digest() == _sha256.sha256(b"twelve").digest()
hashlib.new("sha512_224", b"twelve")          # only OpenSSL provides it
db = sqlite3.connect(":memory:")
db.execute("create table t (x)")
db.execute("insert into t values (42)")
assert db.execute("select x from t").fetchone() == (42,)
assert ctypes.CDLL(None).getpid() == os.getpid()
assert lzma.decompress(lzma.compress(b"x" * 100)) == b"x" * 100
assert bz2.decompress(bz2.compress(b"y" * 100)) == b"y" * 100
assert zlib.decompress(zlib.compress(b"z")) == b"z"
assert decimal.Decimal("0.1") + decimal.Decimal("0.2") == decimal.Decimal("0.3")
uuid.uuid1()
json.dumps({"ok": True})

modules = [m.__file__ for m in (_ssl, _hashlib, _sqlite3, _ctypes, _lzma, _bz2, _uuid,
                                 _curses, _decimal, readline)]
with open("/proc/self/maps") as maps:
    mapped = sorted({line.split()[-1] for line in maps if ".so" in line.split()[-1]})
print(json.dumps({"prefix": sys.prefix, "base_prefix": sys.base_prefix,
                  "executable": sys.executable, "path": sys.path, "modules": modules,
                  "mapped": mapped, "openssl": ssl.OPENSSL_VERSION}))
"""


def run_probe(python: Path, *, via: list[str] | None = None) -> dict:
    cmd = [*(via or CLEAN_ENV), str(python), "-c", PROBE]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd="/", check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def assert_self_contained(seen: dict, python_dir: Path) -> None:
    root = str(python_dir)
    assert seen["prefix"] == seen["base_prefix"] == root
    assert seen["executable"].startswith(root + "/")
    assert [p for p in seen["path"] if p and not p.startswith(root + "/")] == []
    assert all(m.startswith(root + "/") for m in seen["modules"]), seen["modules"]
    outside = [m for m in seen["mapped"] if not m.startswith(root + "/") and not elf.is_glibc(m)]
    assert outside == []


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    cache = tmp_path_factory.mktemp("interpreter-cache")
    started = time.monotonic()
    path, described = prepare_interpreter(cache)
    cold = time.monotonic() - started
    return cache, path, described, cold


def _size_mb(path: Path) -> float:
    return sum(p.lstat().st_size for p in path.rglob("*")) / 1e6


def test_prepared_layout(prepared, capsys):
    _, path, described, cold = prepared
    lib = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert described.executable == f"bin/{lib}"
    assert sorted(p.name for p in (path / "bin").iterdir()) == ["python3", lib]
    assert os.readlink(path / "bin" / "python3") == lib
    assert list((path / "lib" / lib / "site-packages").iterdir()) == []
    for pruned in ["test", "unittest/test", "tkinter"]:
        assert not (path / "lib" / lib / pruned).exists(), pruned
    assert not list((path / "lib" / lib).glob("config-*"))
    assert not list((path / "lib" / lib / "lib-dynload").glob("_test*"))
    # the optional modules (keep_stdlib) stay in the cache; each release leaves them out
    for kept in ["unittest/case.py", "pydoc.py", "venv/__init__.py", "sqlite3", "ctypes",
                 "curses", "lib-dynload", "idlelib", "ensurepip", "lib2to3", "turtle.py"]:
        assert (path / "lib" / lib / kept).exists(), kept
    assert sorted(p.name for p in (path / "lib").iterdir() if p.is_file()) == \
        sorted(described.vendored)
    assert "libcrypt.so.1" in described.vendored or not _links("_crypt", "libcrypt")
    assert all((path / "lib" / so).stat().st_mode & 0o777 == 0o755 for so in described.vendored)
    size = _size_mb(path)
    with capsys.disabled():
        print(f"\nprepared interpreter: {size:.1f} MB, cold prepare {cold:.1f}s, "
              f"vendored {', '.join(described.vendored)}")
    assert size < 60


def _links(module: str, library: str) -> bool:
    mod = __import__(module)
    return any(library in e.name for e in elf.ldd(Path(mod.__file__)))


def test_prepared_is_relocatable(prepared):
    check_relocatable(prepared[1])


def test_second_prepare_reuses_the_cache(prepared):
    cache, path, described, _ = prepared
    messages = []
    inode = path.stat().st_ino  # a prepare publishes a new directory by rename
    again, described_again = prepare_interpreter(cache, log=messages.append)
    assert (again, described_again) == (path, described)
    assert messages == []
    assert path.stat().st_ino == inode, "the cached interpreter was prepared again"
    assert sorted(p.name for p in cache.iterdir()) == [path.name]


def test_copies_run_from_anywhere_with_an_empty_environment(prepared, tmp_path):
    first, second = tmp_path / "a" / "python", tmp_path / "b" / "python"
    copy_interpreter(prepared[1], first)
    copy_interpreter(prepared[1], second)
    assert not (first / DESCRIPTION).exists()
    moved = tmp_path / "elsewhere" / "deeper" / "python"
    moved.parent.mkdir(parents=True)
    second.rename(moved)
    for python_dir in (first, moved):
        assert_self_contained(run_probe(python_dir / "bin" / "python3.11"), python_dir)
        assert_self_contained(run_probe(python_dir / "bin" / "python3"), python_dir)


def test_bytecode_is_reproducible(prepared, tmp_path):
    """Two prepares give the same zip and the same stdlib.HOT files, and their shapes without
    strip the same .pyc; the prepared tree itself holds none (a shape compiles what it
    ships)."""
    other, _ = prepare_interpreter(tmp_path / "cache")

    def bytecode(tree):
        return {p.relative_to(tree): p.read_bytes() for p in tree.rglob("*.pyc")
                if stdlib.HOT_DIR not in p.relative_to(tree).parts}

    assert bytecode(prepared[1]) == bytecode(other) == {}
    assert (prepared[1] / "stdlib.zip").read_bytes() == (other / "stdlib.zip").read_bytes()
    hot = [{p.relative_to(path): p.read_bytes() for p in (path / stdlib.HOT_DIR).rglob("*.pyc")}
           for path in (prepared[1], other)]
    assert hot[0] == hot[1] and len(hot[0]) > 20
    shapes = [shaped_interpreter(path, strip=False, keep_stdlib=())
              for path in (prepared[1], other)]
    first, second = ({p.relative_to(shape): p.read_bytes() for p in shape.rglob("*.pyc")}
                     for shape in shapes)
    assert len(first) > 500
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []
    flags = {name: int.from_bytes(data[4:8], "little") for name, data in first.items()}
    assert [name for name, flag in flags.items() if flag != 0b01] == []   # all unchecked-hash
    assert all(str(shapes[0]).encode() not in data and str(prepared[1]).encode() not in data
               for data in first.values())
    # a module left out (OPTIONAL_STDLIB) leaves no bytecode behind either
    assert not any(name.name.startswith("turtle.") for name in first)


def test_the_copy_compiles_as_its_source_does(prepared, tmp_path):
    """A build installs and compiles the dependencies with the interpreter the release bundles
    a copy of, while that copy is being prepared (pipeline.assemble_release): the bytecode must
    not depend on which of the two compiled it, stripped (sourceless, no column tables) or not."""
    python_dir = tmp_path / "release" / "python"
    copy_interpreter(prepared[1], python_dir, strip=True)
    compiled = []
    for n, python in enumerate([find_source().executable, python_dir / "bin" / "python3.11"]):
        stages = [tmp_path / f"stripped-{n}", tmp_path / f"plain-{n}"]
        for stage in stages:
            for package in (json, email):
                shutil.copytree(Path(package.__file__).parent, stage / "lib" / package.__name__,
                                ignore=shutil.ignore_patterns("__pycache__"))
        assert deps.compile_stripped(stages[0], python, set()) == ""
        assert assemble.byte_compile(stages[1], str(python)) == ""
        compiled.append({p.relative_to(stage).as_posix(): p.read_bytes()
                         for stage in stages for p in stage.rglob("*.pyc")})
    assert len(compiled[0]) > 50
    assert compiled[0].keys() == compiled[1].keys()
    assert [name for name in compiled[0] if compiled[0][name] != compiled[1][name]] == []


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs root and mount namespaces")
def test_runs_with_the_source_and_every_system_python_hidden(prepared, tmp_path):
    python_dir = tmp_path / "release" / "python"
    copy_interpreter(prepared[1], python_dir)
    sources = [f for f, _, _ in json.loads((prepared[1] / DESCRIPTION).read_text())["sources"]]
    stdlib = sysconfig.get_paths(vars={"installed_base": sys.base_prefix})["stdlib"]
    own_prefix = [] if sys.base_prefix in ("/", "/usr", "/usr/local") else [sys.base_prefix]
    hide_dirs = [*own_prefix, "/root/.pyenv", "/usr/lib/python3*", "/usr/local/lib/python3*"]
    hide_files = ["/usr/bin/python3*", "/usr/local/bin/python3*", "/usr/lib/*/libpython3*",
                  "/usr/local/lib/libpython3*", *sources]
    script = "\n".join([
        "set -e",
        f"for d in {' '.join(hide_dirs)}; do",
        '  if [ -d "$d" ] && [ ! -L "$d" ]; then mount -t tmpfs tmpfs "$d"; fi',
        "done",
        f"for f in {' '.join(shlex.quote(f) if f in sources else f for f in hide_files)}; do",
        '  if [ -f "$f" ] && [ ! -L "$f" ]; then mount --bind /dev/null "$f"; fi',
        "done",
        f"test ! -e {shlex.quote(stdlib + '/os.py')}",
        *[f"test ! -s {shlex.quote(f)}" for f in sources],
        'exec "$0" "$@"',
    ])
    python = python_dir / "bin" / "python3.11"
    seen = run_probe(python, via=[*CLEAN_ENV, "unshare", "-m", "sh", "-c", script])
    assert_self_contained(seen, python_dir)
    assert Path(stdlib, "os.py").exists()      # the mounts did not leak out of the namespace


@pytest.mark.skipif(not Path("/usr/bin/python3.11").exists(), reason="needs Debian's python3.11")
def test_debian_interpreter_as_source(tmp_path):
    venv = tmp_path / "debvenv"
    subprocess.run(["/usr/bin/python3.11", "-m", "venv", "--without-pip", str(venv)], check=True)
    patchelf = elf.find_patchelf()
    if patchelf is None:
        pytest.skip("needs patchelf")
    code = ("import json, sys; from pathlib import Path; "
            "from twelve.builder.interpreter import prepare_interpreter; "
            "path, d = prepare_interpreter(Path(sys.argv[1])); "
            "print(json.dumps([str(path), d.version, d.vendored]))")
    env = {"PATH": f"{Path(patchelf).parent}:/usr/bin:/bin", "PYTHONPATH": str(SRC)}
    result = subprocess.run([str(venv / "bin" / "python"), "-c", code, str(tmp_path / "cache")],
                            env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    path, version, vendored = json.loads(result.stdout)
    assert version.startswith("3.11.")
    description = json.loads((Path(path) / DESCRIPTION).read_text())
    assert ["/usr/bin/python3.11"] == [f for f, _, _ in description["sources"] if "python" in f]
    assert "libpython3.11.so.1.0" not in vendored    # Debian's executable is not --enable-shared
    copy = tmp_path / "release" / "python"
    copy_interpreter(Path(path), copy)
    check_relocatable(copy)
    assert_self_contained(run_probe(copy / "bin" / "python3.11"), copy)
