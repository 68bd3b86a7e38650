"""The dependency cache and linked trees: links, not copies; hashes computed once; the cache
is never written through a release."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from twelve.builder import assemble, depcache, deps


def make_tree(root: Path) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text("x = 1\n")
    (root / "pkg" / "sub" / "data.bin").write_bytes(b"\0\1\2")
    (root / "tool").write_text("#!/bin/sh\n")
    os.chmod(root / "tool", 0o755)
    os.symlink("pkg/mod.py", root / "alias.py")
    (root / "empty").mkdir()
    return root


def test_link_tree_links_files_and_recreates_the_rest(tmp_path):
    source = make_tree(tmp_path / "cache")
    dest = tmp_path / "release" / "lib"
    depcache.link_tree(source, dest, skip=frozenset({"tool"}))
    assert (dest / "pkg" / "mod.py").stat().st_ino == (source / "pkg" / "mod.py").stat().st_ino
    assert os.readlink(dest / "alias.py") == "pkg/mod.py"
    assert (dest / "empty").is_dir() and not (dest / "tool").exists()
    assert (dest / "pkg" / "sub" / "data.bin").read_bytes() == b"\0\1\2"


def test_known_hashes_match_the_files_and_reach_the_manifest(tmp_path):
    source = make_tree(tmp_path / "cache")
    depcache.write_hashes(source)
    recorded = json.loads((source / depcache.HASHES).read_text())
    assert recorded["pkg/mod.py"] == assemble.sha256_file(source / "pkg" / "mod.py")
    dest = tmp_path / "release"
    depcache.link_tree(source, dest / "lib", skip=frozenset({depcache.HASHES}))
    known = depcache.known_hashes(source)
    # A linked file's hash is taken from the cache; a new file's is computed.
    (dest / "lib" / "new.py").write_text("y = 2\n")
    files = assemble.file_manifest(dest, "0.1.0", known)
    assert files["lib/pkg/mod.py"]["sha256"] == recorded["pkg/mod.py"]
    assert files["lib/new.py"]["sha256"] == assemble.sha256_file(dest / "lib" / "new.py")


def test_entry_keys_change_with_what_they_hold():
    base = depcache.entry_key("flask==3.1.3 --hash=sha256:aa\n", "3.11.7-cpython-311", False)
    assert base == depcache.entry_key("flask==3.1.3 --hash=sha256:aa\n", "3.11.7-cpython-311",
                                      False)
    assert base != depcache.entry_key("flask==3.1.2 --hash=sha256:bb\n", "3.11.7-cpython-311",
                                      False)
    assert base != depcache.entry_key("flask==3.1.3 --hash=sha256:aa\n", "3.12.1-cpython-312",
                                      False)
    assert base != depcache.entry_key("flask==3.1.3 --hash=sha256:aa\n", "3.11.7-cpython-311",
                                      True)


def test_pruning_a_record_never_writes_into_a_linked_file(tmp_path):
    from twelve.builder import archive

    cache = tmp_path / "cache" / "lib"
    dist = cache / "pkg-1.0.dist-info"
    dist.mkdir(parents=True)
    (cache / "pkg.py").write_text("")
    (dist / "RECORD").write_text("pkg.py,,\nbin/pkg,,\npkg-1.0.dist-info/RECORD,,\n")
    lib = tmp_path / "release" / "lib"
    depcache.link_tree(cache, lib)
    archive.normalise_lib(lib)  # bin/pkg is not shipped: its row goes
    assert "bin/pkg" not in (lib / "pkg-1.0.dist-info" / "RECORD").read_text()
    assert "bin/pkg" in (dist / "RECORD").read_text(), "the cache's copy is untouched"


def _lib_with_two_packages(tmp_path):
    lib = tmp_path / "stage" / "lib"
    for rel in ("plain/__init__.py", "plain/core.py", "plain/core.pyi", "plain/fast.pyx",
                "plain/tests/__init__.py", "plain/tests/test_core.py", "plain/py.typed",
                "plain/templates/page.html", "kept/__init__.py", "kept/tests/test_k.py",
                "kept/kept.pyi"):
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        (lib / rel).write_text("X = 1\n" if rel.endswith(".py") else "data\n")
    info = lib / "Kept-1.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_text("kept/__init__.py,,\nkept/tests/test_k.py,,\n"
                                 "kept/kept.pyi,,\nKept-1.0.dist-info/RECORD,,\n")
    return lib


def test_strip_leaves_out_tests_and_stubs_but_not_data_or_kept_packages(tmp_path):
    lib = _lib_with_two_packages(tmp_path)
    kept = deps.kept_files(lib, ("kept",))
    deps.remove_unused(lib, kept)
    left = sorted(p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file())
    assert left == ["Kept-1.0.dist-info/RECORD", "kept/__init__.py", "kept/kept.pyi",
                    "kept/tests/test_k.py", "plain/__init__.py", "plain/core.py",
                    "plain/py.typed", "plain/templates/page.html"]


def test_strip_compiles_sourceless_except_kept_packages(tmp_path):
    lib = _lib_with_two_packages(tmp_path)
    kept = deps.kept_files(lib, ("kept",))
    assert deps.compile_stripped(lib.parent, Path(sys.executable), kept) == ""
    assert (lib / "plain" / "core.pyc").is_file() and not (lib / "plain" / "core.py").exists()
    assert (lib / "kept" / "__init__.py").is_file() and not (lib / "kept" / "__init__.pyc").exists()
    assert list((lib / "kept" / "__pycache__").glob("__init__.*.pyc"))
