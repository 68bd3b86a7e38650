"""`twelve gen.ansible` driven for real: the generated playbooks deploy tests/fixtures/fleet_app
to three hosts (network namespaces with their own sshd, tests/fleet/hosts.py) over SSH, with
the role's release service manager (bin/NAME daemon/restart), while a client load runs in
the client namespace against the three hosts' addresses.

One lifecycle, in order, because each step starts from the state the previous one left:
first deploy, upgrade under load, an upgrade whose new version fails its health check, one
whose configuration is invalid, the rollback play, and the pruning of old versions.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, copy_project, twelve

pytestmark = pytest.mark.slow

NAME = "fleet_app"
BIN = Path(sys.executable).parent
COOKIE = "fleet-cookie-" + "c" * 40
VAULT_PASSWORD = "fleet-vault-password"
KEEP = 1  # the role's default is 5; 1 shows pruning with few versions
LOAD = Path(__file__).resolve().parents[1] / "fleet" / "load.py"


def tools_missing() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} is missing"
    if not Path("/usr/sbin/sshd").exists():
        return "sshd is missing (Debian's openssh-server; scripts/system-deps installs it)"
    if not (BIN / "ansible-playbook").exists():
        return "ansible-playbook is missing (the test extra of pyproject.toml)"
    return None


def build(tmp: Path, version: str, *, healthy: bool = True, requires: str = "") -> Path:
    """A tarball of fleet_app VERSION; unhealthy: GET /health answers 503; requires: a
    variable its runtime config now requires."""
    project = copy_project(FIXTURES / NAME, tmp / f"build-{version}" / NAME)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(re.sub(r'(?m)^version = ".*"$', f'version = "{version}"',
                                pyproject.read_text()))
    (project / "src" / NAME / "variant.py").write_text(
        f'VERSION = "{version}"\nHEALTHY = {healthy}\n')
    if requires:
        with (project / "config" / "runtime.py").open("a") as f:
            f.write(f'config("{NAME}", token=env.secret("{requires}", min_length=16, '
                    f'help="required from this version on"))\n')
    twelve("release", "--overwrite", cwd=project, env={"TWELVE_ENV": "prod"})
    return project / "_build" / "prod" / f"{NAME}-{version}.tar.gz"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    from fleet.hosts import Fleet

    missing = tools_missing()
    if missing:
        pytest.skip(missing)
    hosts = Fleet(tmp_path_factory.mktemp("fleet"))
    try:
        yield hosts.create()
    finally:
        hosts.remove()


@pytest.fixture(scope="module")
def playbooks(fleet, tmp_path_factory):
    """rel/ansible of fleet_app as gen.ansible writes it, with an encrypted vault and an
    inventory of the three hosts."""
    project = copy_project(FIXTURES / NAME, tmp_path_factory.mktemp("gen") / NAME)
    twelve("gen.ansible", cwd=project)
    ansible = project / "rel" / "ansible"
    vault = ansible / "group_vars" / NAME / "vault.yml"
    vault.write_text(json.dumps({
        f"vault_{NAME}_cookie": COOKIE,
        f"vault_{NAME}_env": {"PORT": "4000", "HOST": "0.0.0.0",
                              "MIGRATION_LOG": str(fleet.tmp / "migrations.log")}}))
    (fleet.tmp / "vault-password").write_text(VAULT_PASSWORD)
    run_ansible(fleet, "ansible-vault", "encrypt", str(vault))
    assert vault.read_text().startswith("$ANSIBLE_VAULT")
    inventory = {NAME: {
        "hosts": {h.name: {"ansible_host": h.address, f"{NAME}_root": str(h.root)}
                  for h in fleet.hosts},
        "vars": {"ansible_user": "root", "ansible_ssh_private_key_file": str(fleet.key),
                 "ansible_python_interpreter": "/usr/bin/python3",
                 f"{NAME}_service_manager": "release", f"{NAME}_keep": KEEP,
                 f"{NAME}_health_path": "/health", f"{NAME}_health_retries": 2,
                 f"{NAME}_health_delay": 1}}}
    (fleet.tmp / "inventory.yml").write_text(json.dumps(inventory))
    return ansible


def ansible_env(fleet) -> dict:
    home = fleet.tmp / "ansible-home"
    return dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", ANSIBLE_HOME=str(home),
                ANSIBLE_LOCAL_TEMP=str(home / "tmp"), ANSIBLE_REMOTE_TEMP=str(home / "remote"),
                ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_NOCOLOR="1",
                ANSIBLE_VAULT_PASSWORD_FILE=str(fleet.tmp / "vault-password"),
                ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=60s "
                                 "-o UserKnownHostsFile=/dev/null",
                ANSIBLE_SSH_CONTROL_PATH_DIR=str(home / "cp"))


def run_ansible(fleet, tool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(fleet.in_client([str(BIN / tool), *args]), cwd=cwd,
                          env=ansible_env(fleet), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=600)


def playbook(fleet, playbooks: Path, name: str, **extra: str) -> subprocess.CompletedProcess:
    started = time.monotonic()
    args = ["-i", str(fleet.tmp / "inventory.yml"), name]
    for key, value in extra.items():
        args += ["-e", f"{NAME}_{key}={value}"]
    proc = run_ansible(fleet, "ansible-playbook", *args, cwd=playbooks)
    print(f"{name} {extra.get('version', '')}: {time.monotonic() - started:.1f}s")
    return proc


def deploy(fleet, playbooks, tarball: Path, version: str, *, ok: bool = True,
           serial: int = 1):
    proc = playbook(fleet, playbooks, "deploy.yml", version=version, tarball=str(tarball),
                    serial=str(serial))
    if ok:
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return proc


class Load:
    """tests/fleet/load.py in the client namespace, against every host: bounded in time and
    count, stopped by its stop file, killed by pid if it outlives the test."""

    def __init__(self, fleet, tag: str) -> None:
        self.out = fleet.tmp / f"load-{tag}.json"
        self.stop_file = fleet.tmp / f"load-{tag}.stop"
        self.urls = [h.url("/") for h in fleet.hosts]
        self.proc = subprocess.Popen(
            fleet.in_client([sys.executable, str(LOAD), str(self.out), str(self.stop_file),
                             "300", "60000", *self.urls]),
            stdin=subprocess.DEVNULL)

    def stop(self) -> dict:
        self.stop_file.touch()
        try:
            self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return json.loads(self.out.read_text())


def current(host) -> str:
    return os.readlink(host.root / "current")


def migrations(fleet) -> list[str]:
    log = fleet.tmp / "migrations.log"
    return log.read_text().splitlines() if log.exists() else []


def node_pid(host) -> int:
    proc = subprocess.run(
        [str(host.root / "current" / "bin" / NAME), "pid"], capture_output=True, text=True,
        timeout=60, stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "RELEASE_TMP": str(host.root / "shared" / "run"),
             "RELEASE_COOKIE": COOKIE})
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout)


def test_fleet_lifecycle(fleet, playbooks, tmp_path):
    tarballs = {v: build(tmp_path, v) for v in ("0.1.0", "0.2.0", "0.5.0")}
    tarballs["0.3.0"] = build(tmp_path, "0.3.0", healthy=False)
    tarballs["0.4.0"] = build(tmp_path, "0.4.0", requires="API_TOKEN")
    first, second, *others = fleet.hosts

    # First deploy, all hosts in one batch (nothing serves yet): every host serves 0.1.0,
    # migrated once, on the first host.
    deploy(fleet, playbooks, tarballs["0.1.0"], "0.1.0", serial=3)
    assert [fleet.get(h) for h in fleet.hosts] == [f"{NAME} 0.1.0"] * 3
    assert migrations(fleet) == [f"0.1.0 {first.root}/shared/state"]
    for host in fleet.hosts:
        assert (host.root / "shared" / f"{NAME}.env").stat().st_mode & 0o777 == 0o600

    # Upgrade under load: no failed request, all on 0.2.0, migrated once.
    load = Load(fleet, "upgrade")
    try:
        time.sleep(1)
        proc = deploy(fleet, playbooks, tarballs["0.2.0"], "0.2.0")
    finally:
        seen = load.stop()
    assert all(s["failures"] == [] for s in seen.values()), seen
    assert all(s["versions"] == [f"{NAME} 0.1.0", f"{NAME} 0.2.0"] for s in seen.values()), seen
    assert [current(h) for h in fleet.hosts] == ["releases/0.2.0"] * 3
    assert migrations(fleet)[1:] == [f"0.2.0 {first.root}/shared/state"]
    pids = {h.name: node_pid(h) for h in fleet.hosts}

    # A version that fails its health check: the first host rolls back by itself, the play
    # stops before the next batch, nobody else is touched, no client sees a failure.
    load = Load(fleet, "unhealthy")
    try:
        time.sleep(1)
        proc = deploy(fleet, playbooks, tarballs["0.3.0"], "0.3.0", ok=False)
    finally:
        seen = load.stop()
    assert proc.returncode != 0
    assert f"{NAME} 0.3.0 failed on h1" in proc.stdout and "rolled back to 0.2.0" in proc.stdout
    assert "Status code was 503" in proc.stdout
    assert all(s["failures"] == [] for s in seen.values()), seen
    assert seen[first.url("/")]["versions"][-1] == f"{NAME} 0.2.0"
    for host in others + [second]:
        assert seen[host.url("/")]["versions"] == [f"{NAME} 0.2.0"]
        assert not (host.root / "releases" / "0.3.0").exists()
    assert [current(h) for h in fleet.hosts] == ["releases/0.2.0"] * 3
    assert {h.name: node_pid(h) for h in fleet.hosts} == pids

    # A version whose config is invalid (exit 78 on a newly required variable): stopped by
    # `check` on the first host, before any switch; the reason is in the play's output.
    proc = deploy(fleet, playbooks, tarballs["0.4.0"], "0.4.0", ok=False)
    assert proc.returncode != 0
    assert "API_TOKEN   missing" in proc.stdout and '"rc": 78' in proc.stdout, proc.stdout
    assert [current(h) for h in fleet.hosts] == ["releases/0.2.0"] * 3
    assert {h.name: node_pid(h) for h in fleet.hosts} == pids
    assert [line.split()[0] for line in migrations(fleet)] == ["0.1.0", "0.2.0", "0.3.0"]

    # rollback.yml: every host back on 0.1.0 (the batches are a concern of the deploys).
    proc = playbook(fleet, playbooks, "rollback.yml", serial="3")
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert [current(h) for h in fleet.hosts] == ["releases/0.1.0"] * 3
    assert [fleet.get(h) for h in fleet.hosts] == [f"{NAME} 0.1.0"] * 3

    # Versions beyond the last KEEP are removed with their tarballs, never current or
    # previous: whatever each host had, 0.5.0 and 0.1.0 (the version to roll back to) remain.
    deploy(fleet, playbooks, tarballs["0.5.0"], "0.5.0", serial=3)
    assert [fleet.get(h) for h in fleet.hosts] == [f"{NAME} 0.5.0"] * 3
    for host in fleet.hosts:
        assert sorted(p.name for p in (host.root / "releases").iterdir()) == \
            ["0.1.0", "0.1.0.tar.gz", "0.5.0", "0.5.0.tar.gz"]
