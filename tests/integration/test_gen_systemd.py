"""gen.systemd against the example's real release: systemd-analyze verifies the units and rates
the service's exposure (≤ 3.0), and the unit's own ExecStart/ExecReload, environment and socket
run the release the way systemd would: socket activation, READY=1, WATCHDOG=1, reload in place,
STOPPING=1 and a clean exit."""
from __future__ import annotations

import configparser
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import EXAMPLES, SECRET, copy_project, free_port, get, twelve

pytestmark = pytest.mark.slow

SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
EXPOSURE = re.compile(r"Overall exposure level for (\S+): (\d+\.\d+)")
MAX_EXPOSURE = 3.0


def analyze(*args: str) -> subprocess.CompletedProcess:
    assert os.path.exists(SYSTEMD_ANALYZE), \
        "systemd-analyze is missing: run scripts/system-deps (Debian package systemd)"
    return subprocess.run([SYSTEMD_ANALYZE, *args], capture_output=True, text=True, timeout=120)


def exposure(unit: Path) -> float:
    proc = analyze("security", "--offline=yes", "--no-pager", str(unit))
    match = EXPOSURE.search(proc.stdout)
    assert match, proc.stdout + proc.stderr
    return float(match.group(2))


@pytest.fixture(scope="module")
def units(hello_release, tmp_path_factory) -> Path:
    """The example's units, pointing at the session's built release (ExecStart must exist),
    which is also where the EnvironmentFile template comes from."""
    project = copy_project(EXAMPLES / "hello", tmp_path_factory.mktemp("units") / "hello")
    (project / "_build").symlink_to(hello_release.parents[2])
    proc = twelve("gen.systemd", "--release-root", str(hello_release), "--socket",
                  "127.0.0.1:4000", "--watchdog", "2", cwd=project)
    assert "* environment template from _build/prod/rel/hello/bin/hello env --example" \
        in proc.stdout
    return project / "rel" / "systemd"


def test_systemd_analyze_verify_accepts_the_units(units):
    files = sorted(str(p) for p in units.glob("hello*.s*"))
    assert [Path(f).name for f in files] == ["hello-worker.service", "hello.service",
                                             "hello.socket"]
    proc = analyze("verify", *files)
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines() if "hello" in line]
    assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr


def test_systemd_analyze_verify_is_not_a_rubber_stamp(units, tmp_path):
    broken = tmp_path / "hello.service"
    broken.write_text((units / "hello.service").read_text()
                      .replace("ExecStart=", "ExecStart=/nonexistent")
                      .replace("Requires=hello.socket\nAfter=hello.socket\n", ""))
    proc = analyze("verify", str(broken))
    assert proc.returncode != 0 and "is not executable" in proc.stderr


def syscall_set(names: list[str]) -> set[str]:
    """System calls named or in the named @groups, as systemd expands them."""
    found: set[str] = set()
    for name in names:
        if not name.startswith("@"):
            found.add(name)
            continue
        listing = analyze("syscall-filter", name).stdout.splitlines()[1:]
        members = [line.strip() for line in listing
                   if line.strip() and not line.strip().startswith("#")]
        found |= syscall_set(members)
    return found


def allowed_syscalls(unit: Path) -> set[str]:
    allowed: set[str] = set()
    for line in unit.read_text().splitlines():
        if line.startswith("SystemCallFilter="):
            value = line.partition("=")[2]
            if value.startswith("~"):
                allowed -= syscall_set(value[1:].split())
            else:
                allowed |= syscall_set(value.split())
    return allowed


def test_the_unit_lets_a_stopping_granian_worker_forbid_itself_accept(units):
    """The example depends on granian, whose workers stop accepting through seccomp
    (docs/servers.md, Draining): its web unit allows that call, and still none of the
    privileged ones; the worker process type's unit, which serves no HTTP, does not."""
    web, worker = (allowed_syscalls(units / f) for f in ("hello.service",
                                                         "hello-worker.service"))
    assert {"seccomp", "prctl", "accept4", "clone"} <= web
    assert not {"mount", "reboot", "init_module", "setrlimit"} & web
    assert web - worker == {"seccomp"}


@pytest.mark.parametrize("unit", ["hello.service", "hello-worker.service"])
def test_exposure_is_at_most_3(units, unit):
    score = exposure(units / unit)
    print(f"\n`systemd-analyze security --offline=yes {unit}`: exposure {score} "
          f"(at most {MAX_EXPOSURE})")
    assert score <= MAX_EXPOSURE


def test_the_exposure_figure_measures_the_hardening(units, tmp_path):
    bare = tmp_path / "hello.service"
    text = (units / "hello.service").read_text()
    kept = [line for line in text.splitlines()
            if not line or line.startswith(("[", "#", "Exec", "Type", "Description"))]
    bare.write_text("\n".join(kept) + "\n")
    assert exposure(bare) > 9.0, "without the hardening the same unit is rated UNSAFE"


def test_env_template_is_what_the_release_declares(units, hello_release):
    """Every variable block of hello.env is the release's own `env --example` block for it,
    evaluated as the unit runs it (STATE_DIRECTORY=/var/lib/hello)."""
    proc = subprocess.run([str(hello_release / "bin/hello"), "env", "--example"], text=True,
                          capture_output=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "STATE_DIRECTORY": "/var/lib/hello",
                               "RELEASE_TMP": "/run/hello"})
    assert proc.returncode == 0, proc.stderr
    template = (units / "hello.env").read_text()
    blocks = [b for b in proc.stdout.strip().split("\n\n") if "STATE_DIRECTORY" not in b]
    assert blocks and all(block in template for block in blocks), template
    assert "DATABASE_URL=sqlite:////var/lib/hello/hello.db" in template


# -- the unit as systemd runs it ----------------------------------------------------------------

def read_unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read(path)
    return parser


def unit_environment(service, env_file: Path, tmp: Path) -> dict:
    """What systemd would give ExecStart: Environment=, the EnvironmentFile (filled in by the
    operator), STATE_DIRECTORY and RUNTIME_DIRECTORY — with /run and /var/lib under tmp."""
    paths = {"/run/hello": str(tmp / "run"), "/var/lib/hello": str(tmp / "state")}
    environ = {"PATH": "/usr/bin:/bin", "STATE_DIRECTORY": paths["/var/lib/hello"],
               "RUNTIME_DIRECTORY": paths["/run/hello"]}
    for assignment in service["Environment"].split():
        name, value = assignment.split("=", 1)
        environ[name] = paths.get(value, value)
    for line in env_file.read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            environ[name] = value
    environ["SECRET_KEY_BASE"] = SECRET  # what the operator adds to the EnvironmentFile
    for path in paths.values():
        Path(path).mkdir(mode=0o700)
    return environ


class Supervisor:
    """The part of systemd this unit relies on: a notify socket and a passed listener."""

    def __init__(self, tmp: Path, port: int):
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify_path = str(tmp / "notify")
        self.notify.bind(self.notify_path)
        self.notify.settimeout(0.2)
        self.listener = socket.create_server(("127.0.0.1", port), backlog=128)
        self.messages: list[str] = []

    def spawn(self, argv: list[str], environ: dict, watchdog_usec: int) -> subprocess.Popen:
        fd = self.listener.fileno()
        environ = {**environ, "NOTIFY_SOCKET": self.notify_path, "LISTEN_FDS": "1",
                   "LISTEN_FDNAMES": "web", "WATCHDOG_USEC": str(watchdog_usec)}
        # systemd puts the socket at fd 3 and LISTEN_PID/WATCHDOG_PID = the pid it execs.
        exec_as_systemd = ("import os, sys; os.dup2(int(sys.argv[1]), 3); "
                           "os.environ['LISTEN_PID'] = os.environ['WATCHDOG_PID'] = "
                           "str(os.getpid()); os.execv(sys.argv[2], sys.argv[2:])")
        return subprocess.Popen([sys.executable, "-c", exec_as_systemd, str(fd), *argv],
                                env=environ, pass_fds=(fd,), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def wait_for(self, state: str, timeout: float, proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.messages += self.notify.recv(4096).decode().splitlines()
            except socket.timeout:
                pass
            if state in self.messages:
                self.messages.remove(state)
                return
            assert proc.poll() is None or state == "STOPPING=1", \
                f"the node exited with {proc.returncode}:\n{proc.stdout.read()}"
        raise AssertionError(f"no {state} within {timeout}s; got {self.messages}")

    def close(self) -> None:
        self.notify.close()
        self.listener.close()


def test_the_unit_runs_the_release_as_systemd_would(units, tmp_path):
    service = read_unit(units / "hello.service")["Service"]
    listen = read_unit(units / "hello.socket")["Socket"]["ListenStream"]
    assert listen == "127.0.0.1:4000"
    port = free_port()  # the test's own port instead of 4000, which may be taken
    environ = unit_environment(service, units / "hello.env", tmp_path)
    environ["PORT"] = "1"  # never bound: the socket comes from the supervisor
    supervisor = Supervisor(tmp_path, port)
    node = supervisor.spawn(service["ExecStart"].split(), environ,
                            int(service["WatchdogSec"]) * 1_000_000)
    try:
        supervisor.wait_for("READY=1", 60, node)
        assert get(f"http://127.0.0.1:{port}/")[0] == 200
        supervisor.wait_for("WATCHDOG=1", 5, node)

        reload = subprocess.run(service["ExecReload"].split(), env=environ, text=True,
                                capture_output=True, timeout=60)
        assert reload.returncode == 0, reload.stdout + reload.stderr
        supervisor.wait_for("READY=1", 60, node)
        assert node.poll() is None, "reloaded in place: the main pid systemd watches lives on"
        assert get(f"http://127.0.0.1:{port}/")[0] == 200

        node.send_signal(signal.SIGTERM)  # KillMode=mixed: the main process only
        assert node.wait(int(service["TimeoutStopSec"])) == 0
        supervisor.wait_for("STOPPING=1", 5, node)
    finally:
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait(10)
        supervisor.close()
