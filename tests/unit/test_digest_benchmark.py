"""The digest benchmark runs and reports what it promises (a smoke test: a tiny tree, and
no assertion on timings, which depend on the machine)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "digest.py"


def test_benchmark_smoke(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCHMARK), "--files", "25", "--jobs", "2",
                           "--json", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["benchmark"] == "digest" and result["files"] == 25
    assert result["baseline"]["jobs"] == 1 and result["parallel"]["jobs"] == 2
    for run in (result["baseline"], result["parallel"]):
        assert run["files"] == 25 and run["seconds"] > 0 and run["files_per_second"] > 0
    assert isinstance(result["speedup"], float) and "gzip" in result["encodings"]
    assert list(tmp_path.iterdir()) == [], "the generated trees are removed"


def test_benchmark_human_output(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCHMARK), "--files", "5", "--no-compile",
                           "--dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("twelve digest: 5 files") and "no compression" in lines[0]
    assert "single-threaded (jobs=1)" in lines[1] and "files/s" in lines[2]
    assert lines[3].startswith("  speed-up: ")
