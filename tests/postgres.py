"""A throw-away PostgreSQL server for the tests (12-factor IV: the attached resource).

A pytest plugin (``pytest_plugins = ["postgres"]`` in conftest.py). The session-scoped
``postgres_server`` runs Debian's own binaries (/usr/lib/postgresql/VERSION/bin, installed by
scripts/system-deps): ``initdb`` into a fresh directory, ``pg_ctl start`` on a free loopback port
with its Unix socket in that directory, and after the session ``pg_ctl stop -m fast`` and the
directory removed. PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` user (which Debian's package creates) or ``nobody``. Durability is off (no fsync):
nothing here outlives the session — and should a session be killed before its teardown, the next
one stops the server it left behind (each directory records the pid of its pytest process).

``postgres`` is the URL of a database made for the session:
``postgresql://twelve:PASSWORD@127.0.0.1:PORT/twelve`` — password authentication over TCP,
as an app's DATABASE_URL would be. ``postgres_server.create_database(name)`` makes another.
The tests are skipped, with the reason, only when no PostgreSQL binaries are installed.
"""
from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

PREFIX = "twelve-pg-"
OWNER_FILE = "pytest.pid"  # the pid of the session that started the server
USER = "twelve"
DATABASE = "twelve"
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections
NO_BINARIES = ("PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or on "
               "PATH); `sh scripts/system-deps` installs Debian's postgresql package")
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
    "max_connections": "100", "shared_buffers": "32MB",
}


def find_bindir() -> Path | None:
    """The newest Debian installation's bin directory, else wherever initdb is on PATH."""
    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.split("/")[-3]))

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def server_account() -> pwd.struct_passwd | None:
    """Who runs the server: this user, or as root an unprivileged one (postgres refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a postgres nor a nobody user exists "
                       "to run PostgreSQL as")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One initdb'd cluster in ``directory``, started on ``port``; stopped by ``stop()``."""

    def __init__(self, bindir: Path, directory: Path, account: pwd.struct_passwd | None):
        self.bindir, self.directory, self.account = bindir, directory, account
        self.data, self.log = directory / "data", directory / "server.log"
        self.password = secrets.token_urlsafe(16)
        self.port = 0

    def run(self, tool: str, *args: str, as_server: bool = True,
            timeout: float = START_TIMEOUT + 30) -> subprocess.CompletedProcess:
        """Run one of the server's binaries (as the server's user), failing with its output."""
        ids = {}
        if as_server and self.account is not None:
            ids = {"user": self.account.pw_uid, "group": self.account.pw_gid,
                   "extra_groups": []}
        proc = subprocess.run([str(self.bindir / tool), *args], cwd=self.directory, text=True,
                              capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout,
                              env=dict(os.environ, LC_ALL="C", TZ="UTC"), **ids)
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} exited {proc.returncode}\n"
                               f"{proc.stdout}{proc.stderr}\nserver log:\n{log}")
        return proc

    def init(self) -> None:
        pwfile = self.directory / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._own(pwfile)
        self.run("initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
                 "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
                 "--encoding=UTF8", "--locale=C")
        pwfile.unlink()

    def start(self, attempts: int = 3) -> None:
        """``pg_ctl start`` on a free port; another process may take the port first: retry."""
        for attempt in range(attempts):
            self.port = free_port()
            options = [f"-c {key}={value}" for key, value in SETTINGS.items()]
            options += [f"-p {self.port}", f"-c unix_socket_directories={self.directory}"]
            try:
                self.run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w",
                         "-t", str(START_TIMEOUT), "-o", " ".join(options))
                return
            except RuntimeError:
                if attempt == attempts - 1:
                    raise

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w")

    def create_database(self, name: str) -> str:
        """A new, empty database owned by the test user (one of that name is dropped first, so
        tests may reuse names); returns its URL."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', database="postgres")
        self.psql(f'CREATE DATABASE "{name}" OWNER {USER}', database="postgres")
        return self.url(name)

    def psql(self, sql: str, database: str = DATABASE) -> str:
        """Run SQL over the Unix socket (trusted); return psql's unaligned, tuples-only output."""
        return self.run("psql", "-h", str(self.directory), "-p", str(self.port), "-U", USER,
                        "-d", database, "-v", "ON_ERROR_STOP=1", "-X", "-A", "-t",
                        "-c", sql, as_server=False).stdout

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _own(self, path: Path) -> None:
        if self.account is not None:
            os.chown(path, self.account.pw_uid, self.account.pw_gid)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive
    return True


def remove_orphans(bindir: Path, account: pwd.struct_passwd | None) -> None:
    """Stop and remove the servers of sessions that died without their teardown."""
    for directory in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            owner = int((directory / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not started yet, or not ours
        if alive(owner):
            continue
        try:
            PostgresServer(bindir, directory, account).stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A running, throw-away PostgreSQL server with the database ``twelve``."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(NO_BINARIES)
    account = server_account()
    remove_orphans(bindir, account)
    # Not under pytest's tmp_path: its parents are 0700, and the server's user must reach it.
    directory = Path(tempfile.mkdtemp(prefix=PREFIX))
    server = PostgresServer(bindir, directory, account)
    try:
        (directory / OWNER_FILE).write_text(str(os.getpid()))
        server._own(directory)
        server.init()
        server.start()
        server.create_database(DATABASE)
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(postgres_server) -> str:
    """DATABASE_URL of the session's PostgreSQL database (postgresql://…@127.0.0.1:PORT/…)."""
    return postgres_server.url()
