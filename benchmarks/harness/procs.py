"""Processes the benchmark starts: every one is registered by PID and stopped by PID at the end,
whatever happens; HTTP readiness on loopback; the memory of a process tree.

Memory of a server is the sum over its process tree (the node or arbiter and every descendant,
found through ``/proc/PID/task/*/children``) of ``VmRSS`` from ``/proc/PID/status`` — what
``ps`` shows, so pages a forked worker shares with its parent count once per process — and of
``Pss`` from ``/proc/PID/smaps_rollup``, which divides shared pages among their sharers.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

LOOPBACK = "127.0.0.1"
POLL = 0.005  # seconds between readiness probes: the resolution of launch → first 200


class Processes:
    """A registry of started processes; ``close`` (or leaving the ``with``) stops them all."""

    def __init__(self) -> None:
        self.pids: list[int] = []

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, argv: list[str], *, env: dict, cwd: Path, log: Path) -> subprocess.Popen:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.pids.append(proc.pid)
        return proc

    def adopt(self, pid: int) -> None:
        """A process started by someone else (a daemon) that we must still stop."""
        self.pids.append(pid)

    def close(self) -> None:
        for pid in reversed(self.pids):
            terminate(pid)
        self.pids.clear()


def terminate(pid: int, timeout: float = 10.0) -> float:
    """SIGTERM, wait until gone (then SIGKILL its group); return the seconds it took."""
    started = time.perf_counter()
    if not alive(pid):
        return 0.0
    _signal(pid, signal.SIGTERM)
    if not wait_gone(pid, timeout):
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            _signal(pid, signal.SIGKILL)
        wait_gone(pid, 5.0)
    return time.perf_counter() - started


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (reaping it if it is our child)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in (b"Z", b"X")


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.002)
    return not alive(pid)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def url(port: int, path: str = "/") -> str:
    return f"http://{LOOPBACK}:{port}{path}"


def http_status(address: str, timeout: float = 5.0) -> int | None:
    """The status of GET ``address``; None when nothing answers."""
    try:
        with urllib.request.urlopen(address, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, ConnectionError, OSError):
        return None


def wait_http(address: str, timeout: float, proc: subprocess.Popen | None = None) -> float:
    """Poll until GET ``address`` answers 200; return perf_counter() at that moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before answering "
                               f"{address}")
        if http_status(address, timeout=2.0) == 200:
            return time.perf_counter()
        time.sleep(POLL)
    raise RuntimeError(f"{address} did not answer 200 within {timeout:.0f}s")


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in _listdir(f"/proc/{current}/task"):
            try:
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
            except OSError:
                continue
            todo.extend(int(c) for c in children)
    return found


def tree_memory(pid: int, root_only: bool = False) -> tuple[int, int]:
    """(sum of VmRSS, sum of Pss) in bytes over the process tree of ``pid`` (or ``pid``
    alone)."""
    rss = pss = 0
    for member in [pid] if root_only else tree(pid):
        rss += _field_kb(f"/proc/{member}/status", "VmRSS:") * 1024
        pss += _field_kb(f"/proc/{member}/smaps_rollup", "Pss:") * 1024
    return rss, pss


def _field_kb(path: str, name: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


class MemorySampler:
    """Samples a process tree's RSS and PSS every ``interval`` seconds in a thread; the peak
    is the largest sum seen."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            rss, pss = tree_memory(self.pid)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            if self._stop.wait(self.interval):
                return
