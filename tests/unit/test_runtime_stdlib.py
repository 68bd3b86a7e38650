"""The runtime that ships in every release imports the standard library only (DESIGN §1)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

PROBE = """
import importlib, json, pkgutil, sys
before = set(sys.modules)
import twelve.runtime
names = [m.name for m in pkgutil.walk_packages(twelve.runtime.__path__, "twelve.runtime.")]
for name in names:
    importlib.import_module(name)
import twelve
foreign = sorted(m for m in set(sys.modules) - before
                 if m.split(".")[0] not in sys.stdlib_module_names and m.split(".")[0] != "twelve")
print(json.dumps({"modules": names, "foreign": foreign}))
"""


def test_every_runtime_module_imports_only_the_standard_library():
    proc = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(SRC)!r})\n"
                           + PROBE], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert "twelve.runtime.control.channel" in result["modules"]
    assert "twelve.runtime.servers.gunicorn" in result["modules"]
    assert result["foreign"] == [], "twelve.runtime must not import third-party modules"


def test_the_runtime_never_imports_the_builder():
    for path in (SRC / "twelve" / "runtime").rglob("*.py"):
        text = path.read_text()
        for builder in ("twelve.builder", "twelve.cli", "twelve.project", "twelve.gen",
                        "twelve.assets", "twelve.errors", "twelve.aliases"):
            assert f"import {builder}" not in text and f"from {builder}" not in text, \
                f"{path.name} imports {builder}"
