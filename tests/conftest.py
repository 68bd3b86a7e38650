"""Shared fixtures: real releases built once per session, real processes stopped by PID."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest_plugins = ["postgres"]  # tests/postgres.py: the session's throw-away PostgreSQL server

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TWELVE = [sys.executable, "-m", "twelve"]
SECRET = "s3cr3t-" + "k" * 70  # a valid SECRET_KEY_BASE for tests (never a real one)


def twelve(*args: str, cwd: Path, env: dict | None = None, check: bool = True,
           timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the twelve CLI as a user would, capturing its output."""
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.run([*TWELVE, *args], cwd=cwd, env=full_env, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"twelve {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def copy_project(src: Path, dest: Path) -> Path:
    # A developer's checkout may hold what a fresh clone has not: builds, venvs, node tools,
    # collected static files (Django's staticfiles/).
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(
        "_build", "__pycache__", ".venv", "node_modules", "staticfiles", "*.egg-info"))
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the node exited with {proc.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def get(url: str) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def fill_disk(disk: Path) -> Path:
    """Write into ``disk`` until it is full (ENOSPC); return the file to delete for room."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def tree_digest(root: Path) -> dict[str, str]:
    """Path → sha256 (or link target, or 'dir') of everything under root, modes included."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            elif path.is_dir():
                out[rel] = f"dir:{st.st_mode:o}"
            else:
                out[rel] = f"{st.st_mode:o}:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return out


class Node:
    """A `bin/NAME start` process, always stopped by PID when the test ends."""

    def __init__(self, argv: list[str], env: dict, port: int):
        self.port = port
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, timeout: float = 30) -> "Node":
        wait_http(self.url("/"), timeout, self.proc)
        return self

    def terminate(self, timeout: float = 15) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.proc.stdout.read() if self.proc.stdout else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


@pytest.fixture
def nodes():
    started: list[Node] = []

    def start(argv: list[str], env: dict, port: int) -> Node:
        node = Node(argv, env, port)
        started.append(node)
        return node

    yield start
    for node in started:
        node.kill()


def release_env(tmp: Path, **extra: str) -> dict:
    """A minimal environment for a release: what `env -i` plus its config would give."""
    env = {"PATH": "/usr/bin:/bin", "SECRET_KEY_BASE": SECRET,
           "STATE_DIRECTORY": str(tmp / "state"), "HOME": str(tmp)}
    env.update(extra)
    return env


class Release:
    """bin/hello with its own RELEASE_TMP and port; every daemon it starts is stopped."""

    def __init__(self, root: Path, tmp: Path, **env: str) -> None:
        self.root, self.port = root, free_port()
        env.setdefault("RELEASE_TMP", str(tmp / "rt"))
        self.env = release_env(tmp, PORT=str(self.port), HOST="127.0.0.1", **env)
        self.env["DATABASE_URL"] = f"sqlite:///{tmp}/hello.db"
        self.pids: set[int] = set()

    def __call__(self, *args: str, check: bool = False, input: str | None = None,
                 **extra_env: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.bin), *args], text=True,
                              capture_output=True, timeout=120, input=input,
                              env=dict(self.env, **extra_env))
        if check:
            assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}{proc.stderr}"
        return proc

    bin_override: Path | None = None

    @property
    def bin(self) -> Path:
        """bin/NAME: the release directory is named after the release (unless overridden,
        e.g. to go through a `current` symlink)."""
        return self.bin_override or self.root / "bin" / self.root.name

    def daemon(self, *args: str) -> int:
        self("daemon", *args, check=True)
        pid = int(self("pid", *args, check=True).stdout)
        self.pids.add(pid)
        return pid

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self, lines: int = 40) -> str:
        """The end of the daemon's log (RELEASE_TMP/log/NAME.log), for a failure message."""
        log = Path(self.env["RELEASE_TMP"]) / "log" / f"{self.root.name}.log"
        try:
            return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"(no daemon log: {e})"

    def cleanup(self) -> None:
        """Kill every node this release started, by the pids the test saw and by the locks
        of its RELEASE_TMP (a daemon whose `pid` the test never got is stopped too). Never by
        a pid file: a stale one may name any process."""
        from twelve.runtime.process.node import lock_holders

        run = Path(self.env["RELEASE_TMP"]) / "run"
        pids = set(self.pids)
        for lock in run.glob("*.lock") if run.is_dir() else ():
            try:
                pids |= lock_holders(lock)
            except OSError:
                pass
        for pid in pids:
            try:
                os.killpg(os.getpgid(pid), 9)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture
def rel(hello_release, tmp_path):
    """bin/hello of the session's release with its own RELEASE_TMP, port and migrated database;
    every node it started is stopped. (A module may define its own ``rel``.)"""
    release = Release(hello_release, tmp_path)
    release("eval", "hello.release.migrate()", check=True)
    yield release
    release.cleanup()


@pytest.fixture
def no_active_config(monkeypatch):
    """No runtime configuration evaluated or installed in this process, before and after."""
    from twelve.runtime.config import store as config_module
    from twelve.runtime.config import env as env_module

    monkeypatch.setattr(config_module, "_current", None)
    monkeypatch.setattr(config_module, "_installed", None)
    monkeypatch.setattr(config_module, "_installed_env", None)
    monkeypatch.setattr(env_module, "_recorder", None)


@pytest.fixture(scope="session")
def hello_project(tmp_path_factory) -> Path:
    return copy_project(EXAMPLES / "hello", tmp_path_factory.mktemp("hello") / "hello")


@pytest.fixture(scope="session")
def hello_release(hello_project) -> Path:
    """The example's prod release, built once for the session (read-only for tests)."""
    twelve("release", "--overwrite", cwd=hello_project, env={"TWELVE_ENV": "prod"})
    return hello_project / "_build" / "prod" / "rel" / "hello"


@pytest.fixture(scope="session")
def example_release(tmp_path_factory, request):
    """example_release("hello_fastapi"): an example's prod release, built once per session
    from a copy of examples/NAME (read-only for tests; hello's is hello_release)."""
    built: dict[str, Path] = {}

    def build(name: str) -> Path:
        if name == "hello":
            return request.getfixturevalue("hello_release")
        if name not in built:
            project = copy_project(EXAMPLES / name, tmp_path_factory.mktemp(name) / name)
            twelve("release", "--overwrite", cwd=project, env={"TWELVE_ENV": "prod"})
            built[name] = project / "_build" / "prod" / "rel" / name
        return built[name]
    return build
