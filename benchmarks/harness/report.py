"""latest.md from one run's results (the JSON that latest.json holds): the targets first, the
headline table, then a table per metric, the machine, the versions and the command line."""
from __future__ import annotations

from harness.stats import Sample

PEER_ORDER = ("pyinstaller", "pex", "shiv", "venv")
HEADLINE = (("cold build", "build", "cold"), ("warm rebuild", "build", "warm"),
            ("incremental rebuild", "build", "incremental"))


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def megabytes(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} MB"


def times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _sample(data: dict | None) -> Sample | None:
    return Sample.from_json(data) if data and data.get("values") else None


def _spread(data: dict | None, fmt=seconds) -> tuple[str, str, str, str]:
    s = _sample(data)
    if s is None:
        return ("not measured", "", "", "0")
    return (fmt(s.median), fmt(s.min), fmt(s.max), str(len(s.values)))


def render(results: dict) -> str:
    parts = [_title(results), _targets(results), _headline(results), _builds(results),
             _phases(results), _sizes(results), _launch(results), _control(results),
             _serving(results), _memory(results), _context(results)]
    return "\n\n".join(p for p in parts if p) + "\n"


def _title(r: dict) -> str:
    meta = r["meta"]
    lines = ["# Benchmark results: twelve vs PyInstaller, pex, shiv, venv + pip",
             "",
             f"Mode **{meta['mode']}**, app `{meta['app']}`, {meta['workers']} gunicorn workers "
             f"everywhere; {meta['started']} UTC, {meta['duration_s'] / 60:.1f} minutes.",
             f"Produced by `{meta['via']}` (`{meta['command']}`).",
             "Medians of repeated runs after a warm-up; min and max beside them; ratios are "
             "against figures measured in the same run, so compare those across machines, "
             "not the absolute numbers."]
    before, after = r.get("load", [(0, 0, 0), (0, 0, 0)])
    nproc = meta["machine"]["nproc"] or 1
    busy = max(before[0], after[0]) > nproc
    lines += ["", f"Load average (1 min) at start {before[0]:.2f}, at end {after[0]:.2f} on "
                  f"{nproc} CPUs" + (": **the machine was busy with other work during this "
                                     "run, so absolute figures are inflated and noisier; "
                                     "trust the ratios more**" if busy else ".")]
    if r.get("errors"):
        lines += ["", "**Failed in this run** (those figures are missing):", ""]
        lines += [f"```\n{e}\n```" for e in r["errors"]]
    if r.get("skipped"):
        lines += ["", "Skipped or reduced in this run:"] + [f"- {s}" for s in r["skipped"]]
    return "\n".join(lines)


def _targets(r: dict) -> str:
    rows = ["## twelve's targets (issue 7, point 4)", "",
            "| target | measured | measured ÷ target | met |", "|---|---|---|---|"]
    missed = []
    for t in r.get("targets", []):
        value, unit = t["measured"], t["unit"]
        shown = "not measured" if value is None else _with_unit(value, unit)
        need = "≥" if t["at_least"] else "≤"
        ratio = "—" if t["ratio"] is None else f"{t['ratio']:.2f} (needs {need} 1)"
        met = {True: "✅ met", False: "❌ **not met**", None: "— not measured"}[t["met"]]
        rows.append(f"| {t['target']} | {shown} | {ratio} | {met} |")
        if t["met"] is False:
            missed.append(t)
    if missed:
        rows += ["", "### Not met: why, and what it would take", ""]
        for t in missed:
            why = r.get("reasons", {}).get(t["key"], "")
            rows.append(f"- **{t['target']}** — measured {_with_unit(t['measured'], t['unit'])}."
                        f" {why} What it would take: {t['hint']}.")
    return "\n".join(rows)


def _with_unit(value: float, unit: str) -> str:
    if unit == "s":
        return seconds(value)
    if unit == "×":
        return times(value)
    return f"{value:.1f} {unit}"


def _labels(r: dict) -> list[tuple[str, str]]:
    build = r.get("build", {})
    return [(k, build[k]["label"]) for k in ("twelve", *PEER_ORDER) if k in build]


def _headline(r: dict) -> str:
    tools = _labels(r)
    if not tools:
        return ""
    head = "| metric | " + " | ".join(label for _, label in tools) + " |"
    rows = ["## Headline: twelve vs each peer", "",
            "Medians; in brackets the peer's figure ÷ twelve's (above 1: twelve is faster or "
            "smaller; for requests/s, twelve ÷ bare).", "", head,
            "|---" * (len(tools) + 1) + "|"]
    for title, group, kind in HEADLINE:
        base = r["build"]["twelve"][kind].get("median")
        cells = [_versus(r["build"][k][kind].get("median"), base, k, seconds) for k, _ in tools]
        rows.append(f"| {title} | " + " | ".join(cells) + " |")
    sizes = {row["label"]: row for row in r.get("size", [])}
    for title, field in (("release / artifact", "bytes"), (".tar.gz", "targz")):
        base = sizes.get("twelve", {}).get(field)
        cells = [_versus(sizes[label][field] / 1e6 if label in sizes else None,
                         base / 1e6 if base else None, k, megabytes) for k, label in tools]
        rows.append(f"| {title} | " + " | ".join(cells) + " |")
    launch = r.get("launch", {})
    base = launch.get("twelve", {}).get("median")
    cells = [_versus(launch.get(label, {}).get("median"), base, k, seconds) for k, label in tools]
    rows.append("| launch → first 200 | " + " | ".join(cells) + " |")
    runs = "runs without a Python on the target"
    rows.append(f"| {runs} | " + " | ".join("yes" if k in ("twelve", "pyinstaller") else "no"
                                             for k, _ in tools) + " |")
    return "\n".join(rows)


def _versus(value, base, key, fmt) -> str:
    if value is None:
        return "not measured"
    if key == "twelve" or not base:
        return fmt(value)
    return f"{fmt(value)} ({value / base:.1f}×)"


def _builds(r: dict) -> str:
    rows = ["## Build", "",
            "| tool | build | median | min | max | n | ÷ twelve |",
            "|---|---|---|---|---|---|---|"]
    base = r["build"].get("twelve", {})
    for key, entry in r.get("build", {}).items():
        for kind in ("cold", "warm", "incremental"):
            if kind not in entry:
                continue
            median, low, high, n = _spread(entry[kind])
            ref = base.get(kind, {}).get("median")
            mine = entry[kind].get("median")
            ratio = times(mine / ref) if mine and ref and key != "twelve" else ""
            note = entry[kind].get("note")
            rows.append(f"| {entry['label']} | {kind}{' (' + note + ')' if note else ''} | "
                        f"{median} | {low} | {high} | {n} | {ratio} |")
    return "\n".join(rows)


def _phases(r: dict) -> str:
    phases = r.get("phases", {}).get("twelve")
    if not phases:
        return ""
    kinds = [k for k in ("cold", "warm", "incremental") if k in phases]
    names = sorted({n for k in kinds for n in phases[k]},
                   key=lambda n: -max(phases[k].get(n, {}).get("median", 0) for k in kinds))
    rows = ["### twelve's builds, phase by phase", "",
            "Medians, from the lines `twelve release` prints, timed as they arrive (a phase "
            "runs until the next line).", "",
            "| phase | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    for name in names:
        cells = [seconds(phases[k][name]["median"]) if name in phases[k] else ""
                 for k in kinds]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    tar = r.get("phases", {}).get("twelve_tar", {}).get("warm", {})
    writing = {n: d for n, d in tar.items() if n.startswith("writing")}
    if writing:
        rows.append("\nWith the tar step: " + ", ".join(
            f"{n} {seconds(d['median'])}" for n, d in writing.items()) + ".")
    for key, entry in r.get("phases", {}).items():
        if key.startswith("twelve") or "warm" not in entry:
            continue
        parts = ", ".join(f"{n} {seconds(d['median'])}" for n, d in entry["warm"].items())
        rows.append(f"\n{r['build'][key]['label']}, warm build: {parts}.")
    return "\n".join(rows)


def _sizes(r: dict) -> str:
    rows = ["## Size", "",
            "Regular files' bytes (symlinks not followed: the venv's interpreter is not "
            "counted), file count, and a .tar.gz (twelve's from its tar step; the others "
            "written by the harness with the same gzip level 6).", "",
            "| artifact | size | files | .tar.gz | ÷ twelve | needs Python on the target | note |",
            "|---|---|---|---|---|---|---|"]
    base = next((x["bytes"] for x in r.get("size", []) if x["label"] == "twelve"), None)
    for row in r.get("size", []):
        ratio = times(row["bytes"] / base) if base and row["label"] != "twelve" else ""
        rows.append(f"| {row['label']} | {megabytes(row['bytes'] / 1e6)} | {row['files']} | "
                    f"{megabytes(row['targz'] / 1e6)} | {ratio} | "
                    f"{'yes' if row['needs_python'] else 'no'} | {row['note']} |")
    if r.get("release_breakdown"):
        parts = ", ".join(f"{name} {mb:.1f} MB" for name, mb in r["release_breakdown"])
        rows += ["", f"twelve's release, largest parts: {parts}."]
    return "\n".join(rows)


def _launch(r: dict) -> str:
    if not r.get("launch"):
        return ""
    rows = ["## Launch → first HTTP 200 on /", "",
            "| tool | median | min | max | n | ÷ bare gunicorn |", "|---|---|---|---|---|---|"]
    bare = r["launch"].get("venv + pip (bare gunicorn)", {}).get("median")
    for label, data in r["launch"].items():
        median, low, high, n = _spread(data)
        ratio = times(data["median"] / bare) if bare and data.get("median") else ""
        rows.append(f"| {label} | {median} | {low} | {high} | {n} | {ratio} |")
    return "\n".join(rows)


def _control(r: dict) -> str:
    if not r.get("control"):
        return ""
    rows = ["## Control commands (twelve)", "",
            "| command | median | min | max | n |", "|---|---|---|---|---|"]
    for label, data in r["control"].items():
        median, low, high, n = _spread(data)
        rows.append(f"| `{label}` | {median} | {low} | {high} | {n} |" if "→" not in label
                    and "floor" not in label else f"| {label} | {median} | {low} | {high} | {n} |")
    return "\n".join(rows)


def _serving(r: dict) -> str:
    if not r.get("serving"):
        return ""
    meta = r["meta"]
    rows = ["## Serving under wrk", "",
            f"wrk, 1 thread, {meta['plan']['wrk_connections']} connections, "
            f"{meta['plan']['wrk_seconds']:.0f} s per round, {meta['plan']['wrk_rounds']} "
            f"round(s) per server, alternating which goes first"
            f"{', after a warm-up round' if meta['plan'].get('wrk_warmup') else ''}; "
            f"{meta['workers']} gunicorn workers each.",
            "", "| path | server | req/s median (min–max) | p99 median (min–max) | non-2xx | "
                "req/s ÷ bare |", "|---|---|---|---|---|---|"]
    for path, servers in r["serving"].items():
        bare = servers.get("bare", {}).get("rps", {}).get("median")
        for key, data in servers.items():
            rps, p99 = data["rps"], data["p99"]
            ratio = times(rps["median"] / bare) if bare and key != "bare" else ""
            rows.append(f"| {path} | {'twelve' if key == 'twelve' else 'bare gunicorn'} | "
                        f"{rps['median']:.0f} ({rps['min']:.0f}–{rps['max']:.0f}) | "
                        f"{p99['median'] * 1000:.1f} ms ({p99['min'] * 1000:.1f}–"
                        f"{p99['max'] * 1000:.1f}) | {data['non_2xx']} | {ratio} |")
    return "\n".join(rows)


def _memory(r: dict) -> str:
    if not r.get("memory"):
        return ""
    rows = ["## Memory", "",
            "Sum over the server's process tree (the node or arbiter and every descendant, from "
            "/proc/PID/task/*/children) of VmRSS (/proc/PID/status: pages shared by forked "
            "workers count once per process, as in `ps`) and of Pss (/proc/PID/smaps_rollup: "
            "shared pages divided among their sharers). Idle: peak over a quiet interval after "
            "warm-up requests; under load: peak sampled every 100 ms during the wrk rounds.", "",
            "| server | processes | idle RSS | of which the node / arbiter | idle PSS | "
            "peak RSS under load | peak PSS under load |", "|---|---|---|---|---|---|---|"]
    for key, data in r["memory"].items():
        cells = [megabytes(Sample.from_json(data[f]).median if f.startswith("idle")
                           else Sample.from_json(data[f]).max) if f in data else "—"
                 for f in ("idle_rss", "idle_root_rss", "idle_pss", "load_rss", "load_pss")]
        count = data.get("processes", {}).get("median")
        rows.append(f"| {'twelve' if key == 'twelve' else 'bare gunicorn'} | "
                    f"{'—' if count is None else f'{count:.0f}'} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _context(r: dict) -> str:
    meta = r["meta"]
    m = meta["machine"]
    lines = ["## Machine, versions, method", "",
             f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, kernel "
             f"{m['kernel']}, {m['os']}.",
             "- Versions: " + "; ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
             f"- Command: `{meta['command']}`.",
             "- Every timed command runs without PYTHONDONTWRITEBYTECODE and without this "
             "machine's pip mirrors (PIP_CONFIG_FILE=/dev/null): packages come from PyPI.",
             "- Builds: cold = empty UV_CACHE_DIR, PIP_CACHE_DIR, XDG_CACHE_HOME (twelve's "
             "interpreter cache, PyInstaller's) and PEX_ROOT, no previous output; warm = the "
             "caches the cold build filled, nothing changed; incremental = warm after one line "
             "appended to the app's source. Peers start each build from an empty output "
             "directory (as a CI job does); `PyInstaller (workpath kept)` keeps its workpath "
             "and installed dependencies; twelve keeps its previous release "
             "(`--overwrite`). Every peer installs the versions of the app's uv.lock.",
             "- Launch: spawn → first 200 on /, polled every 5 ms; pex and shiv after their "
             "first run unpacked them (the warm-up launch).",
             "- Only loopback traffic; every process started is stopped by its PID."]
    return "\n".join(lines)
