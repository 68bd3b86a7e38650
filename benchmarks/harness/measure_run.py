"""Launch → first HTTP 200 on ``/`` for every artifact, and twelve's control commands.

Launch: from just before the process is spawned to the first 200 of GET / (polled every 5 ms
on 127.0.0.1), one discarded warm-up launch per tool first (it also lets pex and shiv unpack
into their caches, as they do once per host). Each server is then stopped by its PID.

Control: each command's wall time as a user runs it (``bin/NAME CMD``, a new process each
time) against a node started with ``daemon``; ``restart`` → serving again is until the command
has returned and a GET / answered 200; ``stop`` → gone is until the node's PID no longer exists,
on an idle node. Baselines measured alongside: the bundled interpreter starting and doing
nothing (``python -E -s -c pass``, the floor of any Python command) and bare gunicorn's SIGTERM
→ gone.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from harness import procs as P
from harness.stats import Sample, repeat
from harness.workspace import SECRET, Workspace

START_TIMEOUT = 90.0


def release_env(ws: Workspace, label: str, port: int, workers: int) -> dict:
    """What a release gets from systemd: an empty environment plus its configuration."""
    home = ws.path("run", label)
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "PORT": str(port),
            "HOST": P.LOOPBACK, "WEB_CONCURRENCY": str(workers), "SECRET_KEY_BASE": SECRET,
            "DATABASE_URL": f"sqlite:///{home}/app.db", "STATE_DIRECTORY": str(home),
            "RELEASE_TMP": str(home / "tmp")}


def peer_env(ws: Workspace, label: str, extra: dict) -> dict:
    """The same configuration for a peer, which reads ./config in development mode."""
    home = ws.path("run", label)
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "TWELVE_ENV": "prod",
            "SECRET_KEY_BASE": SECRET, "DATABASE_URL": f"sqlite:///{home}/app.db",
            "STATE_DIRECTORY": str(home), **extra}


class Server:
    """How to start one tool's server: argv, environment, directory."""

    def __init__(self, label: str, argv_for, env_for, cwd: Path) -> None:
        self.label, self.argv_for, self.env_for, self.cwd = label, argv_for, env_for, cwd

    def start(self, procs: P.Processes, ws: Workspace, port: int) -> subprocess.Popen:
        return procs.start(self.argv_for(port), env=self.env_for(port), cwd=self.cwd,
                           log=ws.path("logs", f"{self.log_name}.log"))

    @property
    def log_name(self) -> str:
        return self.label.split()[0].lower()


def launch_once(server: Server, procs: P.Processes, ws: Workspace) -> float:
    port = P.free_port()
    started = time.perf_counter()
    proc = server.start(procs, ws, port)
    try:
        answered = P.wait_http(P.url(port), START_TIMEOUT, proc)
    finally:
        P.terminate(proc.pid)
    return answered - started


def measure_launch(servers: list[Server], procs: P.Processes, ws: Workspace, reps: int,
                   log) -> dict[str, Sample]:
    results = {}
    for server in servers:
        sample = repeat(lambda i: launch_once(server, procs, ws), reps, warmup=1)
        results[server.label] = sample
        log(f"  {server.label:<28} launch → 200: median {sample.median:6.3f} s "
            f"(min {sample.min:.3f}, max {sample.max:.3f})")
    return results


def timed(argv: list[str], env: dict, check: bool = True) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    seconds = time.perf_counter() - started
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n"
                           f"{proc.stdout}{proc.stderr}")
    return seconds


def measure_control(root: Path, app, ws: Workspace, procs: P.Processes, plan, bare: Server,
                    log) -> dict[str, Sample]:
    bin_ = str(root / "bin" / app.name)
    port = P.free_port()
    env = release_env(ws, "control", port, plan.workers)
    results: dict[str, Sample] = {}
    python = next((root / "python" / "bin").glob("python3.*"))
    results["python -E -s -c pass (floor)"] = repeat(
        lambda i: timed([str(python), "-E", "-s", "-c", "pass"], env), plan.control, 1)
    node = _daemon(bin_, env, procs)
    commands = [("version", ["version"]), ('eval "1 + 1"', ["eval", "1 + 1"]),
                ("eval migration", ["eval", app.migrate]), ('rpc "1 + 1"', ["rpc", "1 + 1"]),
                ("pid", ["pid"])]
    for label, args in commands:
        results[label] = repeat(lambda i: timed([bin_, *args], env), plan.control, 1)
    results["restart → serving again"] = repeat(
        lambda i: _restart(bin_, env, port), plan.stops, 0)
    P.terminate(node)
    results["stop → gone (idle)"] = repeat(lambda i: _stop(bin_, env, procs), plan.stops, 0)
    results["bare gunicorn: SIGTERM → gone (idle)"] = repeat(
        lambda i: _bare_stop(bare, procs, ws), plan.stops, 0)
    for label, sample in results.items():
        log(f"  {label:<36} median {sample.median * 1000:7.1f} ms "
            f"(min {sample.min * 1000:.1f}, max {sample.max * 1000:.1f})")
    return results


def _daemon(bin_: str, env: dict, procs: P.Processes) -> int:
    timed([bin_, "daemon"], env)
    pid = int(subprocess.run([bin_, "pid"], env=env, capture_output=True, text=True,
                             check=True).stdout)
    procs.adopt(pid)
    return pid


def _restart(bin_: str, env: dict, port: int) -> float:
    started = time.perf_counter()
    timed([bin_, "restart"], env)
    return P.wait_http(P.url(port), START_TIMEOUT) - started


def _stop(bin_: str, env: dict, procs: P.Processes) -> float:
    pid = _daemon(bin_, env, procs)
    time.sleep(0.5)  # idle
    started = time.perf_counter()
    timed([bin_, "stop"], env)
    if not P.wait_gone(pid, 30):
        raise RuntimeError(f"the node {pid} was still there 30 s after `stop`")
    return time.perf_counter() - started


def _bare_stop(bare: Server, procs: P.Processes, ws: Workspace) -> float:
    port = P.free_port()
    proc = bare.start(procs, ws, port)
    P.wait_http(P.url(port), START_TIMEOUT, proc)
    time.sleep(0.5)
    return P.terminate(proc.pid)
