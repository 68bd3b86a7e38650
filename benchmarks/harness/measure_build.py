"""Build times: cold (every cache empty: uv's, pip's, XDG_CACHE_HOME — twelve's interpreter
cache and PyInstaller's — and PEX_ROOT, and no previous output), warm (the caches the last cold
build filled, nothing changed), incremental (as warm, after one line was appended to one source
file of the app), and twelve's variants: with the ``tar`` step, with ``strip = false``, with
``optimize = 2`` (for its size), and the example's steps as configured (``assets.deploy`` —
esbuild and ``twelve digest`` — then ``assemble``). The cold build is the warm builds' warm-up.

Beside twelve's rebuilds, their floor in the same run (issue 18): what no rebuild can avoid,
starting the ``twelve`` command (``twelve --version``) plus hashing the inputs of the build
(``twelve.builder.layers.project_digest`` of the app, timed inside one process).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import tools as T
from harness.plan import Plan
from harness.stats import Sample
from harness.workspace import Workspace, cache_dirs, clean_environ, edit_source


@dataclass
class Series:
    """One tool's builds: samples per kind, phases per kind, where its output is."""

    tool: object
    app_dir: Path
    out: Path
    samples: dict[str, Sample] = field(default_factory=dict)
    phases: dict[str, dict[str, Sample]] = field(default_factory=dict)  # kind → phase → s
    caches: Path | None = None  # the warm caches its builds used


def build_series(tool, ws: Workspace, plan: Plan, log, *, app_dir: Path | None = None,
                 out: Path | None = None, warm_caches: Path | None = None) -> Series:
    key = tool.key
    app_dir = app_dir or ws.copy_app(key, steps=["assemble"])
    out = out or ws.path("out", key)
    out.mkdir(parents=True, exist_ok=True)
    series = Series(tool, app_dir, out)
    cold = Sample("s")
    for i in range(plan.builds(key, "cold")):
        warm_caches = ws.fresh(f"caches-{key}")
        cache_dirs(warm_caches)
        _clear_output(tool, app_dir, out)
        build = tool.build(app_dir, out, clean_environ(cache_dirs(warm_caches)))
        cold.values.append(build.seconds)
        _add_phases(series, "cold", build)
        log(f"  {tool.label:<28} cold {i + 1}: {build.seconds:7.2f} s")
    if warm_caches is None:  # no cold build planned: one untimed build fills the caches
        warm_caches = ws.fresh(f"caches-{key}")
        tool.build(app_dir, out, clean_environ(cache_dirs(warm_caches)))
        cold.note = "not measured in this mode"
    env = clean_environ(cache_dirs(warm_caches))
    series.samples["cold"] = cold
    series.samples["warm"] = _repeat(tool, series, env, plan.builds(key, "warm"), "warm", log)
    series.samples["incremental"] = _repeat(tool, series, env, plan.builds(key, "incremental"),
                                            "incremental", log, ws=ws)
    series.caches = warm_caches
    if key == "twelve":
        series.samples["floor"] = rebuild_floor(app_dir, env, max(plan.builds(key, "warm"), 3))
        log(f"  {tool.label:<28} floor: {series.samples['floor'].median:7.2f} s "
            "(twelve --version + hashing the inputs)")
    return series


HASH_INPUTS = ("import sys, time; from pathlib import Path; "
               "from twelve.builder import layers; t = time.perf_counter(); "
               "layers.project_digest(Path(sys.argv[1]).resolve()); "
               "print(time.perf_counter() - t)")


def rebuild_floor(app_dir: Path, env: dict, reps: int) -> Sample:
    """``reps`` times: the wall time of ``twelve --version`` plus that of hashing the app's
    inputs (in-process, the interpreter's start counted once, in the first)."""
    floor = Sample("s")
    for _ in range(reps):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "twelve", "--version"], env=env, check=True,
                       capture_output=True)
        version = time.perf_counter() - started
        hashing = subprocess.run([sys.executable, "-c", HASH_INPUTS, str(app_dir)], env=env,
                                 check=True, capture_output=True, text=True)
        floor.values.append(version + float(hashing.stdout.strip()))
    return floor


def _repeat(tool, series: Series, env: dict, reps: int, kind: str, log,
            ws: Workspace | None = None) -> Sample:
    sample = Sample("s")
    for i in range(reps):
        if kind == "incremental":
            ws.counter += 1
            edit_source(series.app_dir, ws.app, ws.counter)
        build = tool.build(series.app_dir, series.out, env)
        sample.values.append(build.seconds)
        _add_phases(series, kind, build)
        log(f"  {tool.label:<28} {kind} {i + 1}: {build.seconds:7.2f} s")
    return sample


def _add_phases(series: Series, kind: str, build: T.Build) -> None:
    for name, seconds in build.phases:
        series.phases.setdefault(kind, {}).setdefault(name, Sample("s")).values.append(seconds)


def _clear_output(tool, app_dir: Path, out: Path) -> None:
    shutil.rmtree(app_dir / "_build", ignore_errors=True)
    for child in out.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def twelve_variants(ours: T.Twelve, ws: Workspace, plan: Plan, caches: Path, log) -> dict:
    """Builds of the tar, unstripped and as-configured variants with warm caches (the
    ``strip = false`` build has no tar step: its .tar.gz is written by the harness, at the tar
    step's gzip level)."""
    env = clean_environ(cache_dirs(caches))
    found: dict[str, object] = {}
    variants = [("tar", dict(steps=["assemble", "tar"]), plan.variants),
                ("nostrip", dict(steps=["assemble"], strip=False), 1),
                ("optimize", dict(steps=["assemble"], optimize=2), 1)]
    if ws.app.assets and plan.assets_variant:
        variants.append(("assets", dict(steps=None), plan.variants))
    for name, keys, reps in variants:
        app_dir = ws.copy_app(f"twelve-{name}", **keys)
        sample, phases = Sample("s"), {}
        for i in range(reps):
            build = ours.build(app_dir, ws.path("out", "twelve"), env)
            sample.values.append(build.seconds)
            for phase, seconds in build.phases:
                phases.setdefault(phase, Sample("s")).values.append(seconds)
            log(f"  {'twelve (' + name + ')':<28} warm {i + 1}: {build.seconds:7.2f} s")
        found[name] = (sample, app_dir, phases)
    return found


def pyinstaller_kept(series: Series, ws: Workspace, plan: Plan, log) -> Series:
    """PyInstaller's own incremental mode: the last build's workpath and site-packages kept;
    then one ``--strip`` build into another dist (the size variant)."""
    kept = T.PyInstaller(series.tool.ctx, kept=True)
    env = clean_environ(cache_dirs(series.caches))
    result = Series(kept, series.app_dir, series.out)
    result.samples["warm"] = _repeat(kept, result, env, plan.builds("pyinstaller", "warm"),
                                     "warm", log)
    result.samples["incremental"] = _repeat(kept, result, env,
                                            plan.builds("pyinstaller", "incremental"),
                                            "incremental", log, ws=ws)
    strip = kept.build(series.app_dir, series.out, env, strip=True)
    log(f"  {'PyInstaller (--strip)':<28} build: {strip.seconds:7.2f} s")
    result.caches = series.caches
    return result


def pyinstaller_stripped(series: Series, log) -> None:
    """PyInstaller's ``--strip`` onedir, untimed, for the size group when the build group (which
    makes it in ``pyinstaller_kept``) is not measured."""
    kept = T.PyInstaller(series.tool.ctx, kept=True)
    build = kept.build(series.app_dir, series.out, clean_environ(cache_dirs(series.caches)),
                       strip=True)
    log(f"  {'PyInstaller (--strip)':<28} build: {build.seconds:7.2f} s (untimed)")
