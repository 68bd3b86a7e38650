"""Serving and memory: twelve's release against bare gunicorn from the venv, same worker count.

Both servers run at once on 127.0.0.1 (each idle while the other is loaded), each with its own
freshly migrated SQLite database. ``wrk`` (one thread, a fixed number of connections, a bounded
duration, ``--latency`` for the p99) loads ``/`` then ``/visits``: a warm-up round per server,
then rounds alternating which server goes first, so drift on a noisy machine hits both.

Memory is the process tree's (see ``procs``): idle is the peak over ``idle_seconds`` after a
few requests warmed every worker up; under load, the peak sampled every 100 ms during the wrk
rounds.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import time

from harness import procs as P
from harness.measure_run import START_TIMEOUT, Server
from harness.stats import Sample
from harness.workspace import Workspace

PATHS = ("/", "/visits")
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def wrk_missing() -> str | None:
    if shutil.which("wrk") is None:
        return "wrk is not installed (`make bench` installs the Debian package)"
    return None


def run_wrk(address: str, seconds: float, connections: int) -> dict:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
            "--timeout", "5s", address]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: "
                           f"{(proc.stdout + proc.stderr).strip()[-500:]}")
    return parse_wrk(proc.stdout)


def parse_wrk(out: str) -> dict:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(r"Socket errors:(.*)$", out, re.M)
    return {"rps": rps, "p99": float(p99.group(1)) * UNITS[p99.group(2)],
            "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": sockets.group(1).strip() if sockets else ""}


def _explain(error: Exception, key: str, proc, ws: Workspace) -> RuntimeError:
    """The wrk failure, with whether the server still runs and the end of its log."""
    state = "still running" if proc.poll() is None else f"exited with {proc.returncode}"
    log = ws.path("logs", f"{key}.log")
    tail = log.read_text(errors="replace").splitlines()[-15:] if log.is_file() else []
    return RuntimeError(f"{error}\nthe {key} server (pid {proc.pid}) is {state}; the end of "
                        f"its log:\n" + "\n".join("    " + line for line in tail))


def measure_serving(servers: dict[str, Server], migrate: dict, procs: P.Processes,
                    ws: Workspace, plan, log) -> tuple[dict, dict]:
    """``servers`` maps "twelve" and "bare" to a Server; ``migrate`` to a callable(port)."""
    running = {}
    for key, server in servers.items():
        port = P.free_port()
        migrate[key](port)
        proc = server.start(procs, ws, port)
        P.wait_http(P.url(port), START_TIMEOUT, proc)
        running[key] = (proc, port)
    for key, (proc, port) in running.items():
        for _ in range(10):
            for path in PATHS:
                P.http_status(P.url(port, path))
    memory = {key: {"idle_rss": Sample("MB"), "idle_pss": Sample("MB"),
                    "load_rss": Sample("MB"), "load_pss": Sample("MB"),
                    "idle_root_rss": Sample("MB"), "processes": Sample("")} for key in running}
    for key, (proc, _) in running.items():
        with P.MemorySampler(proc.pid) as sampler:
            time.sleep(plan.idle_seconds)
        memory[key]["idle_rss"].values.append(sampler.peak_rss / 1e6)
        memory[key]["idle_pss"].values.append(sampler.peak_pss / 1e6)
        memory[key]["idle_root_rss"].values.append(P.tree_memory(proc.pid, root_only=True)[0]
                                                   / 1e6)
        memory[key]["processes"].values.append(len(P.tree(proc.pid)))
    serving = {}
    for path in PATHS:
        serving[path] = _load(path, running, memory, plan, log, ws)
    for proc, _ in running.values():
        P.terminate(proc.pid)
    for key in running:
        log(f"  memory {key:<8} idle {memory[key]['idle_rss'].median:6.1f} MB RSS, under load "
            f"{memory[key]['load_rss'].max:6.1f} MB")
    return serving, memory


def _load(path: str, running: dict, memory: dict, plan, log, ws: Workspace) -> dict:
    results = {key: {"rps": Sample("req/s"), "p99": Sample("s"), "non_2xx": 0}
               for key in running}
    keys = list(running)
    for key in keys if plan.wrk_warmup else ():  # warm-up round, discarded
        run_wrk(P.url(running[key][1], path), min(2.0, plan.wrk_seconds), plan.wrk_connections)
    for round_ in range(plan.wrk_rounds):
        for key in (keys if round_ % 2 == 0 else list(reversed(keys))):
            proc, port = running[key]
            try:
                with P.MemorySampler(proc.pid) as sampler:
                    result = run_wrk(P.url(port, path), plan.wrk_seconds, plan.wrk_connections)
            except RuntimeError as e:
                raise _explain(e, key, proc, ws) from None
            results[key]["rps"].values.append(result["rps"])
            results[key]["p99"].values.append(result["p99"])
            results[key]["non_2xx"] += result["non_2xx"]
            memory[key]["load_rss"].values.append(sampler.peak_rss / 1e6)
            memory[key]["load_pss"].values.append(sampler.peak_pss / 1e6)
            log(f"  wrk {path:<8} {key:<8} round {round_ + 1}: {result['rps']:8.1f} req/s, "
                f"p99 {result['p99'] * 1000:6.1f} ms")
    return results

