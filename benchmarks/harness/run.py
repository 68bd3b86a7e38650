"""One benchmark run: prepare the app, build with every tool, then size, launch, control,
serving and memory; evaluate the targets; write latest.json, latest.md and latest.png."""
from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from harness import chart, report, targets
from harness import measure_build as MB
from harness import measure_image as MI
from harness import measure_run as MR
from harness import measure_serving as MS
from harness import measure_size as SZ
from harness import procs as P
from harness import tools as T
from harness.machine import machine, twelve_version as versions_revision, versions
from harness.plan import Plan
from harness.tinyapp import write_tiny_app
from harness.workspace import (HELLO, REFERENCE, Workspace, clean_environ, export_requirements, run,
                               tree_size, write_runtime_wheel)


APPS = {"hello": HELLO, "reference": REFERENCE}


def benchmark(plan: Plan, *, app: str, out: Path, tools_bin: Path | None, via: str,
              work: Path | None = None, keep: bool = False, log=print) -> dict:
    started = time.time()
    results: dict = {"skipped": list(plan.skipped), "load": [os.getloadavg()]}
    with P.Processes() as procs, Workspace(parent=work, keep=keep) as ws:
        ws.app = write_tiny_app(ws.path("tiny")) if app == "tiny" else APPS[app]
        ctx = _prepare(ws, tools_bin, log)
        measure_all(plan, ws, ctx, procs, results, log)
    results["load"].append(os.getloadavg())
    revision = versions_revision()
    if _digest(revision) != _digest(results["_versions"]["twelve"]):
        results["skipped"].append(f"twelve's source changed during this run "
                                  f"({results['_versions']['twelve']} at the start, {revision} "
                                  "at the end): its figures may mix both")
    results["reasons"] = reasons(results)
    results["targets"] = targets.evaluate(results)
    results["meta"] = {
        "mode": plan.mode, "app": ws.app.name, "workers": plan.workers, "via": via,
        "command": shlex.join(["python", *sys.argv]) if sys.argv else "",
        "started": datetime.fromtimestamp(started, timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "duration_s": time.time() - started, "machine": machine(),
        "versions": results.pop("_versions"), "plan": plan.__dict__ | {"skipped": None}}
    write_outputs(results, out, log)
    return results


def _digest(version: str) -> str:
    """The src/twelve digest in a version string: what tells whether the code changed (a
    commit elsewhere in the repository moves the revision, not the code measured)."""
    return version.rsplit("digest", 1)[-1]


def _prepare(ws: Workspace, tools_bin: Path | None, log) -> T.Context:
    env = clean_environ()
    app_dir = ws.prepare(env, log)
    requirements = export_requirements(app_dir, ws.path("requirements.txt"), env)
    wheel = write_runtime_wheel(ws.path("wheels"))
    return T.Context(ws.app, requirements, wheel, tools_bin)


def measure_all(plan: Plan, ws: Workspace, ctx: T.Context, procs: P.Processes,
                results: dict, log) -> None:
    results["_versions"] = versions(ctx.tools_bin, ctx.requirements)
    peers = []
    for key in plan.peers:
        reason = T.missing_tool(ctx, key)
        if reason:
            results["skipped"].append(f"{T.PEER_CLASSES[key].label}: {reason}")
        else:
            peers.append(T.PEER_CLASSES[key](ctx))
    twelve = T.Twelve(ctx)
    log("== build")
    series = {"twelve": MB.build_series(twelve, ws, plan, log)}
    variants = {}
    if {"build", "size"} & set(plan.only):
        variants = MB.twelve_variants(twelve, ws, plan, series["twelve"].caches, log)
    for peer in peers:
        series[peer.key] = MB.build_series(peer, ws, plan, log)
    if "pyinstaller" in series and "build" in plan.only:
        series["pyinstaller_kept"] = MB.pyinstaller_kept(series["pyinstaller"], ws, plan, log)
    elif "pyinstaller" in series and "size" in plan.only:
        MB.pyinstaller_stripped(series["pyinstaller"], log)
    results["build"] = _build_results(series, variants)
    results["phases"] = {k: {kind: {n: s.to_json() for n, s in phases.items()}
                             for kind, phases in v.phases.items()}
                         for k, v in series.items() if v.phases}
    if "tar" in variants:
        tar_phases = variants["tar"][2]
        results["phases"]["twelve_tar"] = {"warm": {n: s.to_json()
                                                    for n, s in tar_phases.items()}}
    root = twelve.artifact(series["twelve"].app_dir, series["twelve"].out)
    if "size" in plan.only:
        log("== size")
        results["size"] = _sizes(ws, series, variants)
        results["release_breakdown"] = release_breakdown(root)
        for row in results["size"]:
            log(f"  {row['label']:<28} {row['bytes'] / 1e6:7.1f} MB, {row['files']:6d} files, "
                f".tar.gz {row['targz'] / 1e6:6.1f} MB")
    _run_metrics(plan, ws, ctx, procs, series, root, results, log)


def _run_metrics(plan, ws, ctx, procs, series, root, results, log) -> None:
    servers = [_twelve_server(ws, root, ctx.app.name, plan, "launch-twelve")]
    servers += [_peer_server(ws, s, plan, f"launch-{k}") for k, s in series.items()
                if k in T.PEER_CLASSES]
    if "launch" in plan.only:
        log("== launch → first 200")
        with _failing_soft("launch", results, log):
            results["launch"] = {k: s.to_json() for k, s in
                                 MR.measure_launch(servers, procs, ws, plan.launch, log).items()}
    bare = next((s for s in servers if s.label.startswith("venv")), None)
    if bare is None:
        results["skipped"].append("control baselines, serving and memory: no venv baseline")
        return
    if "control" in plan.only:
        log("== control")
        with _failing_soft("control", results, log):
            results["control"] = {k: s.to_json() for k, s in MR.measure_control(
                root, ctx.app, ws, procs, plan, bare, log).items()}
    if "serving" not in plan.only:
        return
    missing = MS.wrk_missing()
    if missing:
        results["skipped"].append(f"serving and memory under load: {missing}")
        return
    log("== serving and memory")
    venv = series["venv"]
    serve = {"twelve": _twelve_server(ws, root, ctx.app.name, plan, "serve-twelve"),
             "bare": _peer_server(ws, venv, plan, "serve-bare")}
    migrate = {"twelve": lambda port: _migrate_release(root, ctx.app, ws, plan, port),
               "bare": lambda port: _migrate_venv(venv, ctx.app, ws)}
    with _failing_soft("serving and memory", results, log):
        _serving(serve, migrate, procs, ws, plan, results, log)


def _serving(serve, migrate, procs, ws, plan, results, log) -> None:
    serving, memory = MS.measure_serving(serve, migrate, procs, ws, plan, log)
    results["serving"] = {path: {k: {"rps": v["rps"].to_json(), "p99": v["p99"].to_json(),
                                     "non_2xx": v["non_2xx"]} for k, v in per.items()}
                          for path, per in serving.items()}
    results["memory"] = {k: {f: s.to_json() for f, s in v.items()} for k, v in memory.items()}


@contextlib.contextmanager
def _failing_soft(group: str, results: dict, log):
    """A group that fails is reported (its targets then read "not measured"); the run goes
    on, so one crash does not cost the other groups' figures."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - every failure is written into the results
        message = f"{group}: {type(e).__name__}: {e}"
        results.setdefault("errors", []).append(message)
        log(f"  FAILED {message}")


def _twelve_server(ws, root: Path, name: str, plan, label: str) -> MR.Server:
    return MR.Server("twelve", lambda port: [str(root / "bin" / name), "start"],
                     lambda port: MR.release_env(ws, label, port, plan.workers), ws.root)


def _peer_server(ws, series: MB.Series, plan, label: str) -> MR.Server:
    tool = series.tool

    def argv(port):
        return tool.serve(series.app_dir, series.out, port, plan.workers)[0]

    def env(port):
        return MR.peer_env(ws, label, tool.serve(series.app_dir, series.out, port, 1)[1])

    return MR.Server(tool.label, argv, env, series.app_dir)


def _migrate_release(root: Path, app, ws, plan, port: int) -> None:
    env = MR.release_env(ws, "serve-twelve", port, plan.workers)
    run([str(root / "bin" / app.name), "eval", app.migrate], cwd=ws.root, env=env)


def _migrate_venv(series: MB.Series, app, ws) -> None:
    python = series.tool.python(series.app_dir, series.out)
    env = MR.peer_env(ws, "serve-bare", {})
    module, call = app.migrate.rsplit(".", 1)
    run([python, "-c", f"import {module}; {module}.{call}"], cwd=series.app_dir, env=env)


def _build_results(series: dict, variants: dict) -> dict:
    out = {}
    for key, s in series.items():
        out[key] = {"label": s.tool.label} | {k: v.to_json() for k, v in s.samples.items()}
    for name, (sample, _, _) in variants.items():
        label = {"tar": "twelve + tar step", "nostrip": "twelve, strip = false",
                 "optimize": "twelve, optimize = 2",
                 "assets": "twelve + assets.deploy step"}[name]
        out[f"twelve_{name}"] = {"label": label, "warm": sample.to_json()}
    return out


def _sizes(ws: Workspace, series: dict, variants: dict) -> list[dict]:
    scratch = ws.fresh("archives")
    nostrip_app = variants["nostrip"][1] if "nostrip" in variants else None
    optimize_app = variants["optimize"][1] if "optimize" in variants else None
    rows = SZ.twelve_rows(ws.app.name, variants["tar"][1], nostrip_app, scratch, optimize_app)
    rows.append(MI.image_row(ws.app.name, variants["tar"][1]))
    notes = {"pyinstaller": "", "pex": "one zip file; unpacks into PEX_ROOT on first run",
             "shiv": "one zip file; unpacks into SHIV_ROOT on first run",
             "venv": "not relocatable: needs the same Python at the same path"}
    for key, s in series.items():
        if key not in T.PEER_CLASSES:
            continue
        tool = s.tool
        rows.append(SZ.peer_row(tool.label, tool.artifact(s.app_dir, s.out), scratch,
                                needs_python=tool.needs_python, note=notes[key]))
        if key == "pyinstaller":
            stripped = tool.artifact(s.app_dir, s.out, strip=True)
            if stripped.is_dir():
                rows.append(SZ.peer_row("PyInstaller (onedir, --strip)", stripped, scratch,
                                        needs_python=False))
    return rows


def release_breakdown(root: Path) -> list[tuple[str, float]]:
    parts = [(f"{p.name}/", tree_size(p)[0] / 1e6) for p in root.iterdir() if p.is_dir()]
    lib = root / "lib"
    packages = [(f"lib/{p.name}", tree_size(p)[0] / 1e6) for p in lib.iterdir()
                if p.is_dir() and not p.name.endswith(".dist-info")] if lib.is_dir() else []
    top = sorted(parts, key=lambda x: -x[1]) + sorted(packages, key=lambda x: -x[1])[:6]
    return [(name, round(mb, 1)) for name, mb in top if mb >= 0.05]


def reasons(r: dict) -> dict[str, str]:
    """Why a target is missed, in the run's own figures."""
    found = {}
    for kind, phases in r.get("phases", {}).get("twelve", {}).items():
        top = sorted(phases.items(), key=lambda kv: -kv[1]["median"])[:4]
        text = f"Largest phases of twelve's {kind} build: " + ", ".join(
            f"{name} {report.seconds(d['median'])}" for name, d in top) + "."
        found[kind] = found[f"{kind}_x"] = text
    if r.get("release_breakdown"):
        text = "Largest parts: " + ", ".join(f"{n} {mb:.1f} MB"
                                             for n, mb in r["release_breakdown"][:6]) + "."
        for key in ("size", "size_share", "targz", "targz_share"):
            found[key] = text
    floor = r.get("control", {}).get("python -E -s -c pass (floor)", {}).get("median")
    if floor:
        text = (f"The bundled interpreter alone starts in {report.seconds(floor)}; the rest is "
                "twelve's imports and work.")
        for key in ("rpc", "pid", "eval"):
            found[key] = text
    bare_stop = r.get("control", {}).get("bare gunicorn: SIGTERM → gone (idle)", {}).get("median")
    if bare_stop:
        found["stop"] = f"Bare gunicorn's own SIGTERM → gone takes {report.seconds(bare_stop)}."
    memory = r.get("memory", {})
    if "twelve" in memory and "bare" in memory:
        med = {k: {f: d[f]["median"] for f in ("idle_rss", "idle_pss", "idle_root_rss")
                   if f in d} for k, d in memory.items()}
        found["rss"] = (f"The node process alone holds {med['twelve'].get('idle_root_rss', 0):.1f}"
                        f" MB against the bare arbiter's {med['bare'].get('idle_root_rss', 0):.1f}"
                        " MB: the node imports the app before it forks the workers (gunicorn's "
                        "--preload), so the workers share those pages, which RSS counts once "
                        f"per process; by PSS (shared pages divided) twelve holds "
                        f"{med['twelve']['idle_pss']:.1f} MB against "
                        f"{med['bare']['idle_pss']:.1f} MB.")
    return found


def write_outputs(results: dict, out: Path, log) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    missing = chart.available()
    if missing:
        results["skipped"].append(missing)
        (out / "latest.png").unlink(missing_ok=True)
    else:
        chart.draw(results, out / "latest.png")
    (out / "latest.md").write_text(report.render(results))
    log(f"* wrote {out / 'latest.md'}, latest.json" + ("" if missing else ", latest.png"))


def summary(results: dict) -> str:
    """The targets as the console shows them at the end."""
    lines = ["", "twelve's targets (measured ÷ target):"]
    for t in results["targets"]:
        state = {True: "met", False: "NOT MET", None: "not measured"}[t["met"]]
        value = "—" if t["measured"] is None else report._with_unit(t["measured"], t["unit"])
        ratio = "" if t["ratio"] is None else f"{t['ratio']:6.2f}"
        lines.append(f"  {t['target']:<52} {value:>14} {ratio:>7}  {state}")
    return "\n".join(lines)

