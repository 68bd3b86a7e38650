"""Smoke test of benchmarks/size_floor.py on a tiny release-shaped tree of real ELF files:
each row is on top of the one before, removes exactly the files its lever names, and the
JSON parses."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "size_floor.py"
ELF = Path(sys.executable).resolve()  # any ELF file will do: strip must accept it

pytestmark = pytest.mark.skipif(shutil.which("strip") is None, reason="needs binutils' strip")


def release(root: Path) -> Path:
    dynload = root / "python" / "lib" / "python3.11" / "lib-dynload"
    dynload.mkdir(parents=True)
    for name in ("_codecs_jp", "_curses", "_ssl", "_hashlib", "_json"):
        shutil.copy(ELF, dynload / f"{name}.cpython-311-x86_64-linux-gnu.so")
    for name in ("libpython3.11.so.1.0", "libncursesw.so.6", "libcrypto.so.3", "libssl.so.3"):
        shutil.copy(ELF, root / "python" / "lib" / name)
    (root / "releases" / "0.1.0").mkdir(parents=True)
    (root / "releases" / "CURRENT").write_text("0.1.0\n")
    (root / "releases" / "0.1.0" / "release.json").write_text("{}")
    return root


def test_size_floor_rows_remove_what_they_name(tmp_path):
    root = release(tmp_path / "rel" / "demo")
    out = subprocess.run([sys.executable, str(BENCHMARK), str(root), "--json"],
                         capture_output=True, text=True, check=True).stdout
    rows = json.loads(out)
    assert [r["lever"] for r in rows] == [
        "as built", "+ strip --strip-unneeded (libpython, lib-dynload)",
        "+ CJK codecs and curses left out", "+ OpenSSL left out (breaks apps)"]
    assert [r["files"] for r in rows] == [11, 11, 8, 4]
    assert all(a["bytes"] >= b["bytes"] for a, b in zip(rows, rows[1:]))
    assert all(r["targz"] > 0 for r in rows)
    assert sorted(p.name for p in root.rglob("*") if p.is_file())[0] == "CURRENT", \
        "the release measured is never changed"
    assert len([p for p in root.rglob("*.so*")]) == 9
