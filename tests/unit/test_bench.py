"""The benchmark harness's pure parts (benchmarks/harness): parsing wrk, rewriting the app's
[tool.twelve], the runtime wheel, the targets and the report. No timing is asserted."""
from __future__ import annotations

import os
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from harness import procs, report, targets, workspace  # noqa: E402
from harness.measure_serving import parse_wrk  # noqa: E402
from harness.stats import Sample, ratio, repeat  # noqa: E402

WRK_OUTPUT = """\
Running 3s test @ http://127.0.0.1:4000/visits
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    35.12ms   10.01ms 120.00ms   70.00%
    Req/Sec   228.41     20.12   260.00     70.00%
  Latency Distribution
     50%   33.00ms
     75%   40.00ms
     90%   48.00ms
     99%    1.24s
  687 requests in 3.01s, 120.00KB read
  Non-2xx or 3xx responses: 3
Requests/sec:    228.24
Transfer/sec:     39.87KB
"""


def test_parse_wrk_reads_rate_p99_in_seconds_and_errors():
    parsed = parse_wrk(WRK_OUTPUT)
    assert parsed["rps"] == pytest.approx(228.24)
    assert parsed["p99"] == pytest.approx(1.24)
    assert parsed["non_2xx"] == 3
    microseconds = WRK_OUTPUT.replace("99%    1.24s", "99%  870.00us")
    assert parse_wrk(microseconds)["p99"] == pytest.approx(870e-6)


def test_sample_statistics_and_warmup_discarded():
    calls = []
    sample = repeat(lambda i: calls.append(i) or float(len(calls)), reps=3, warmup=1)
    assert calls == [-1, 0, 1, 2]
    assert sample.values == [2.0, 3.0, 4.0]
    assert (sample.median, sample.min, sample.max) == (3.0, 2.0, 4.0)
    assert Sample.from_json(sample.to_json()).values == sample.values
    assert ratio(2.0, 4.0) == 0.5 and ratio(1.0, None) is None


def test_set_twelve_keys_replaces_steps_and_adds_strip(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n\n[tool.twelve]\napp = "x:app"\n'
                         'steps = ["assets.deploy", "assemble"]\n\n[tool.twelve.aliases]\n'
                         '"assets.deploy" = "true"\n')
    workspace.set_twelve_keys(pyproject, steps=["assemble", "tar"], strip=True)
    tool = tomllib.loads(pyproject.read_text())["tool"]["twelve"]
    assert tool["steps"] == ["assemble", "tar"] and tool["strip"] is True
    assert tool["aliases"] == {"assets.deploy": "true"}
    workspace.set_twelve_keys(pyproject, steps=None, strip=None, optimize=2)
    tool = tomllib.loads(pyproject.read_text())["tool"]["twelve"]
    assert "steps" not in tool and "strip" not in tool and tool["optimize"] == 2
    workspace.set_twelve_keys(pyproject, steps=None, strip=None)
    assert "optimize" not in tomllib.loads(pyproject.read_text())["tool"]["twelve"]


def test_runtime_wheel_holds_the_runtime_and_no_dependency(tmp_path):
    wheel = workspace.write_runtime_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "twelve/__init__.py" in names and "twelve/runtime/boot.py" in names
    assert not any(n.startswith("twelve/builder/") for n in names)
    assert "Requires-Dist" not in metadata


def test_clean_environ_drops_what_a_normal_host_lacks(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    env = workspace.clean_environ({"UV_CACHE_DIR": tmp_path})
    assert "PYTHONDONTWRITEBYTECODE" not in env and "PIP_FIND_LINKS" not in env
    assert env["PIP_CONFIG_FILE"] == os.devnull and env["UV_CACHE_DIR"] == str(tmp_path)


def test_tree_memory_of_this_process_is_counted():
    rss, pss = procs.tree_memory(os.getpid())
    assert rss > 0 and pss > 0
    assert procs.tree(os.getpid())[0] == os.getpid()


def _sample(*values, unit="s"):
    return Sample(unit, list(values)).to_json()


def synthetic_results() -> dict:
    build = {"twelve": {"label": "twelve", "cold": _sample(10.0), "warm": _sample(0.4, 0.5),
                        "incremental": _sample(3.0), "floor": _sample(0.1, 0.12)},
             "pyinstaller": {"label": "PyInstaller (onedir)", "cold": _sample(60.0),
                             "warm": _sample(50.0), "incremental": _sample(50.0)}}
    return {
        "meta": {"mode": "smoke", "app": "tiny", "workers": 2, "via": "make bench",
                 "command": "python benchmarks/bench.py", "started": "2026-01-01 00:00",
                 "duration_s": 60, "machine": {"nproc": 2, "cpu": "cpu", "memory_gib": 24,
                                               "kernel": "6", "os": "Debian", "python": "3.11"},
                 "versions": {"uv": "0.5"}, "plan": {"wrk_connections": 8, "wrk_seconds": 3,
                                                      "wrk_rounds": 1}},
        "skipped": ["pex: not installed"], "load": [(0.5, 0, 0), (0.7, 0, 0)],
        "build": build, "phases": {"twelve": {"warm": {"byte-compiling": _sample(0.5)}},
                                   "twelve_tar": {"warm": {
                                       "writing the .tar.gz (tar step)": _sample(0.6)}}},
        "size": [{"label": "twelve", "bytes": 40e6, "files": 10, "targz": 14e6,
                  "needs_python": False, "note": ""},
                 {"label": "PyInstaller (onedir)", "bytes": 90e6, "files": 20, "targz": 30e6,
                  "needs_python": False, "note": ""}],
        "launch": {"twelve": _sample(0.5), "venv + pip (bare gunicorn)": _sample(0.5)},
        "control": {"python -E -s -c pass (floor)": _sample(0.03),
                    'rpc "1 + 1"': _sample(0.05), "pid": _sample(0.07),
                    'eval "1 + 1"': _sample(0.1), "stop → gone (idle)": _sample(0.2)},
        "serving": {"/": {"twelve": {"rps": _sample(990, unit="req/s"), "p99": _sample(0.010),
                                     "non_2xx": 0},
                          "bare": {"rps": _sample(1000, unit="req/s"),
                                   "p99": _sample(0.009, 0.011), "non_2xx": 0}}},
        "memory": {k: {f: _sample(v, unit="MB") for f in ("idle_rss", "idle_pss", "load_rss",
                                                             "load_pss")}
                   for k, v in (("twelve", 74.0), ("bare", 70.0))},
    }


def test_targets_are_evaluated_met_or_not_or_not_measured():
    rows = {t["key"]: t for t in targets.evaluate(synthetic_results())}
    assert len(rows) == len(targets.TARGETS)
    assert rows["warm"]["met"] is True and rows["warm"]["measured"] == pytest.approx(0.45)
    assert rows["warm"]["floor"] == pytest.approx(0.11)  # the same run's floor, beside it
    assert rows["warm"]["target"] == "warm rebuild ≤ 0.5 s (floor 0.11 s)"
    assert rows["warm_x"]["measured"] == pytest.approx(50 / 0.45)
    assert rows["incremental"]["met"] is False
    assert rows["size_share"]["measured"] == pytest.approx(40 / 90)
    assert rows["pid"]["met"] is False and rows["rpc"]["met"] is True
    assert rows["rps_root"]["met"] is True  # 0.99 ≥ 0.98
    assert rows["p99_root"]["met"] is True  # within bare's own spread
    assert rows["rss"]["measured"] == pytest.approx(4.0) and rows["rss"]["met"] is True
    assert rows["pss_load"]["measured"] == pytest.approx(74 / 70)
    assert rows["pss_load"]["met"] is False
    assert rows["rps_visits"]["met"] is None  # not measured: said so, not guessed
    assert rows["tar"]["measured"] == pytest.approx(0.6) and rows["tar"]["met"] is True


def test_report_renders_every_section_and_names_missed_targets():
    results = synthetic_results()
    results["targets"] = targets.evaluate(results)
    text = report.render(results)
    for heading in ("## twelve's targets", "## Headline", "## Build", "## Size",
                    "## Launch", "## Control", "## Serving", "## Memory", "## Machine"):
        assert heading in text
    assert "**incremental rebuild ≤ 0.6 s (floor 0.11 s)** — measured 3.00 s" in text
    assert "pex: not installed" in text and "`make bench`" in text


def test_diff_of_two_runs_lists_every_target_before_and_after(tmp_path):
    from harness.compare import compare
    import json

    old, new = synthetic_results(), synthetic_results()
    new["build"]["twelve"]["incremental"] = _sample(0.5)
    for results, name in ((old, "old.json"), (new, "new.json")):
        results["targets"] = targets.evaluate(results)
        (tmp_path / name).write_text(json.dumps(results))
    text = compare(tmp_path / "old.json", tmp_path / "new.json")
    assert text.index("before:") < text.index("after:")
    line = next(ln for ln in text.splitlines() if "incremental rebuild ≤ 0.6 s" in ln)
    assert "3.00 s" in line and "500 ms" in line and "NOT → met" in line
    assert sum("→" in ln for ln in text.splitlines()) >= len(targets.TARGETS)
