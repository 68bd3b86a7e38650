"""Smoke test of benchmarks/bench.py: one iteration of every metric on a tiny app (twelve and the
venv baseline; the peers that take minutes are left to `make bench`), then the results must
parse and hold every metric. No timing is asserted: only that each figure is there.

Serving and memory need wrk, which only `make bench` installs (`make test` does not): with wrk
their figures and report sections must be there; without it, exactly the run's own account of
their absence (the skip note, no section, those targets "not measured")."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks" / "bench.py"
WRK_MISSING = "serving and memory under load: wrk is not installed"
LOAD_TARGETS = {"rps_root", "rps_visits", "p99_root", "p99_visits", "rss", "pss_load"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[dict, str, Path]:
    out = tmp_path_factory.mktemp("bench-results")
    work = tmp_path_factory.mktemp("bench-work")
    proc = subprocess.run([sys.executable, str(BENCH), "--smoke", "--app", "tiny", "--out",
                           str(out), "--work", str(work)], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not list(work.iterdir()), "the workspace was not removed"
    return json.loads((out / "latest.json").read_text()), (out / "latest.md").read_text(), out


def _measured(sample: dict) -> bool:
    return sample["n"] == len(sample["values"]) >= 1 and sample["median"] > 0


def test_every_build_kind_is_measured_for_twelve_and_the_baseline(smoke):
    results, _, _ = smoke
    for tool in ("twelve", "venv"):
        for kind in ("cold", "warm", "incremental"):
            assert _measured(results["build"][tool][kind]), (tool, kind)
    for variant in ("twelve_tar", "twelve_nostrip"):
        assert _measured(results["build"][variant]["warm"])
    assert results["phases"]["twelve"], "twelve's warm build has no phases"


def test_sizes_with_and_without_strip_and_tarballs(smoke):
    results, _, _ = smoke
    rows = {row["label"]: row for row in results["size"]}
    assert {"twelve", "twelve (strip = false)", "venv + pip (bare gunicorn)"} <= set(rows)
    for row in rows.values():
        assert row["bytes"] > 0 and row["files"] > 0 and row["targz"] > 0
    assert "strip" in rows["twelve (strip = false)"]["note"]


def test_launch_control_serving_and_memory(smoke):
    results, _, _ = smoke
    assert set(results["launch"]) == {"twelve", "venv + pip (bare gunicorn)"}
    assert all(_measured(s) for s in results["launch"].values())
    for command in ("version", 'eval "1 + 1"', "eval migration", 'rpc "1 + 1"', "pid",
                    "restart → serving again", "stop → gone (idle)",
                    "python -E -s -c pass (floor)", "bare gunicorn: SIGTERM → gone (idle)"):
        assert _measured(results["control"][command]), command
    if shutil.which("wrk") is None:
        assert any(s.startswith(WRK_MISSING) for s in results["skipped"]), results["skipped"]
        assert "serving" not in results and "memory" not in results
        return
    assert not any("wrk" in s for s in results["skipped"]), results["skipped"]
    for path in ("/", "/visits"):
        for server in ("twelve", "bare"):
            assert _measured(results["serving"][path][server]["rps"])
            assert _measured(results["serving"][path][server]["p99"])
    for server in ("twelve", "bare"):
        assert _measured(results["memory"][server]["idle_rss"])
        assert _measured(results["memory"][server]["load_rss"])


def test_targets_and_report(smoke):
    results, text, out = smoke
    assert len(results["targets"]) == 22
    for target in results["targets"]:
        assert target["met"] in (True, False, None)
        if target["met"] is None:
            assert target["measured"] is None  # only what was not measured is undecided
    assert results["meta"]["machine"]["nproc"] >= 1 and results["meta"]["versions"]["uv"]
    assert "## twelve's targets" in text
    assert "smoke run on the tiny app" in text
    by_key = {target["key"]: target for target in results["targets"]}
    assert by_key["tar"]["measured"] is not None, "the warm tar builds' tar step"
    if shutil.which("wrk") is None:
        assert "## Serving under wrk" not in text and "## Memory" not in text
        assert f"- {WRK_MISSING} (`make bench` installs the Debian package)" in text
        assert all(by_key[key]["met"] is None for key in LOAD_TARGETS)
    else:
        assert "## Serving under wrk" in text and "## Memory" in text
        assert "wrk is not installed" not in text
        assert all(by_key[key]["measured"] is not None for key in LOAD_TARGETS)
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    assert (out / "latest.png").is_file() == has_matplotlib
