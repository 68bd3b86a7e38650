"""twelve's targets (issue 7's, with issues 15's and 18's where they moved them), each evaluated
on one run's results: the measured value, the target, measured ÷ target, met or not — and, when
not met, the reason the figures give and what it would take. A build target shows its floor
measured in the same run beside it (measure_build.rebuild_floor); rpc and eval are ratios over
the interpreter's own start in the same run.

"No extra p99 beyond noise": twelve's median p99 is at most bare gunicorn's median p99 plus the
noise, taken as the larger of the spread (max − min) of bare gunicorn's own p99 over the rounds
and 5% of its median.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

P99_NOISE_FLOOR = 0.05


@dataclass(frozen=True)
class Target:
    key: str
    text: str
    unit: str                       # how the measured value and the limit are shown
    limit: float
    at_least: bool                  # True: measured ≥ limit; False: measured ≤ limit
    measure: Callable[[dict], float | None]
    hint: str                       # what it would take, when not met
    floor: Callable[[dict], float | None] | None = None  # what the machine allows, same run


def _median(results: dict, *path: str) -> float | None:
    node = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node.get("median") if isinstance(node, dict) else None


def _build(kind: str, tool: str = "twelve"):
    return lambda r: _median(r, "build", tool, kind)


def _faster(kind: str):
    def measure(r):
        mine, theirs = _median(r, "build", "twelve", kind), _median(r, "build", "pyinstaller", kind)
        return theirs / mine if mine and theirs else None
    return measure


def _size(field: str, label: str = "twelve"):
    def measure(r):
        row = next((x for x in r.get("size", []) if x["label"] == label), None)
        return row[field] / 1e6 if row else None
    return measure


def _tar_step(r: dict) -> float | None:
    """The tar step of a warm build with steps = ["assemble", "tar"]: its phase "writing the
    .tar.gz (tar step)" (issue 15, point 3)."""
    phases = r.get("phases", {}).get("twelve_tar", {}).get("warm", {})
    return next((d.get("median") for n, d in phases.items()
                 if n.startswith("writing") and ".tar.gz" in n), None)


def _size_share(field: str):
    def measure(r):
        mine, theirs = _size(field)(r), _size(field, "PyInstaller (onedir)")(r)
        return mine / theirs if mine and theirs else None
    return measure


def _launch(r):
    mine = _median(r, "launch", "twelve")
    bare = _median(r, "launch", "venv + pip (bare gunicorn)")
    return mine / bare if mine and bare else None


def _control(label: str):
    return lambda r: _median(r, "control", label)


def _over_floor(label: str):
    """A control command's median over the bundled interpreter's own start (same run)."""
    def measure(r):
        mine, floor = _median(r, "control", label), _median(r, "control", FLOOR)
        return mine / floor if mine and floor else None
    return measure


FLOOR = "python -E -s -c pass (floor)"


def _rps(path: str):
    def measure(r):
        mine, bare = (_median(r, "serving", path, k, "rps") for k in ("twelve", "bare"))
        return mine / bare if mine and bare else None
    return measure


def _p99_excess(path: str):
    """twelve's median p99 minus (bare's median p99 + noise), in ms; ≤ 0 is met."""
    def measure(r):
        bare = r.get("serving", {}).get(path, {}).get("bare", {}).get("p99")
        mine = _median(r, "serving", path, "twelve", "p99")
        if not bare or mine is None or not bare.get("values"):
            return None
        noise = max(bare["max"] - bare["min"], P99_NOISE_FLOOR * bare["median"])
        return (mine - bare["median"] - noise) * 1000
    return measure


def _load_pss(r):
    """The process tree's peak PSS under load against bare gunicorn's: the other half of issue
    15, point 5 (the node preloads the app, so RSS counts its shared pages once per process)."""
    mine = _median(r, "memory", "twelve", "load_pss")
    bare = _median(r, "memory", "bare", "load_pss")
    return mine / bare if mine is not None and bare else None


def _idle_rss(r):
    mine = _median(r, "memory", "twelve", "idle_rss")
    bare = _median(r, "memory", "bare", "idle_rss")
    return mine - bare if mine is not None and bare is not None else None


BUILD_HINT = ("reuse installed dependencies from a content-addressed cache keyed by the lock "
              "and platform (hard links or reflinks) instead of reinstalling them, byte-compile "
              "only what changed (or in parallel), skip re-hashing unchanged files")
REBUILD_HINT = ("link what is cached by content (twelve.builder.layers): the app, twelve's "
                "runtime, the shaped interpreter, the exported lock, the SBOM; what is left is "
                "starting twelve, hashing the inputs, making the staging tree's links and "
                "removing the previous release's")
TARGETS: tuple[Target, ...] = (
    Target("warm", "warm rebuild ≤ 0.5 s", "s", 0.5, False, _build("warm"), REBUILD_HINT,
           floor=_build("floor")),
    Target("warm_x", "warm rebuild ≥ 4× faster than PyInstaller's", "×", 4, True,
           _faster("warm"), BUILD_HINT),
    Target("incremental", "incremental rebuild ≤ 0.6 s", "s", 0.6, False,
           _build("incremental"), REBUILD_HINT + "; only the app's wheel is built again",
           floor=_build("floor")),
    Target("incremental_x", "incremental rebuild ≥ 4× faster than PyInstaller's", "×", 4,
           True, _faster("incremental"), BUILD_HINT),
    Target("cold", "cold build ≤ 4 s", "s", 4.0, False, _build("cold"),
           "it already prepares the interpreter while uv downloads and installs, and keeps "
           "both cores busy: it is CPU-bound (~6 s on 2 cores), most of it compiling the "
           "standard library (~1.3 s) and the locked packages (~2 s) and downloading them; "
           "what is left is less to compile, or more cores", floor=_build("floor")),
    Target("cold_x", "cold build ≥ 4× faster than PyInstaller's", "×", 4, True,
           _faster("cold"), "as for the cold build"),
    Target("size", "release (interpreter included) ≤ 35 MB", "MB", 35.0, False,
           _size("bytes"), "prune the interpreter and dependencies further; leave out servers "
                           "the release does not use (issue 15 sets it on --app reference)"),
    Target("size_share", "release ≤ ½ of PyInstaller's onedir", "×", 0.5, False,
           _size_share("bytes"), "as for the release size"),
    Target("targz", ".tar.gz ≤ 12 MB", "MB", 12.0, False, _size("targz"),
           "as for the release size (issue 15: ≤ 12 MB on --app reference)"),
    Target("targz_share", ".tar.gz ≤ ½ of PyInstaller's", "×", 0.5, False,
           _size_share("targz"), "as for the .tar.gz"),
    Target("tar", "tar step ≤ 1 s (warm rebuild)", "s", 1.0, False, _tar_step,
           "reuse the last tarball's compressed blocks; deflate the rest on every core"),
    Target("launch", "launch → first 200 ≤ 1.05× bare gunicorn", "×", 1.05, False, _launch,
           "a launcher that does no work before exec, lazy imports in twelve.runtime, "
           "readiness as soon as the socket listens"),
    Target("rpc", "rpc \"1 + 1\" ≤ 2× the interpreter floor", "×", 2.0, False,
           _over_floor('rpc "1 + 1"'),
           "a control client that imports almost nothing more than the interpreter does "
           "(str paths, frames on _json), the modules it does import as files beside the "
           "standard library zip"),
    Target("pid", "pid ≤ 5 ms", "s", 0.005, False, _control("pid"),
           "the launcher answers from /proc/locks without starting Python"),
    Target("eval", "eval \"1 + 1\" ≤ 2.5× the interpreter floor", "×", 2.5, False,
           _over_floor('eval "1 + 1"'),
           "evaluate the runtime config without importing the builder-side or server modules; "
           "what a runtime.py commonly imports (pathlib, urllib.parse, json) beside the zip"),
    Target("stop", "stop → gone ≤ 100 ms (idle)", "s", 0.100, False,
           _control("stop → gone (idle)"),
           "close idle keep-alive workers at once; no fixed sleeps in the drain"),
    Target("rps_root", "requests/s on / ≥ 0.98× bare", "×", 0.98, True, _rps("/"),
           "same server settings as bare gunicorn (no extra middleware or logging per request)"),
    Target("rps_visits", "requests/s on /visits ≥ 0.98× bare", "×", 0.98, True,
           _rps("/visits"), "as for /"),
    Target("p99_root", "p99 on / no higher than bare beyond noise", "ms over", 0.0, False,
           _p99_excess("/"), "as for requests/s"),
    Target("p99_visits", "p99 on /visits no higher than bare beyond noise", "ms over", 0.0,
           False, _p99_excess("/visits"), "as for requests/s"),
    Target("rss", "idle node RSS ≤ bare + 5 MB", "MB more", 5.0, False, _idle_rss,
           "import less in the node (the builder never; the control server lazily)"),
    Target("pss_load", "peak PSS under load ≤ bare's (the app preloaded, gc.freeze)", "×", 1.0,
           False, _load_pss, "keep the workers' pages shared with the node: gc.freeze() "
           "after the app's import, nothing written into what the workers inherit"),
)


def evaluate(results: dict) -> list[dict]:
    rows = []
    for target in TARGETS:
        value = target.measure(results)
        met = None if value is None else (value >= target.limit if target.at_least
                                          else value <= target.limit)
        floor = target.floor(results) if target.floor is not None else None
        text = target.text if floor is None else f"{target.text} (floor {floor:.2f} s)"
        rows.append({"key": target.key, "target": text, "unit": target.unit, "floor": floor,
                     "limit": target.limit, "at_least": target.at_least, "measured": value,
                     "ratio": (value / target.limit) if value is not None and target.limit
                     else None, "met": met, "hint": target.hint})
    return rows
