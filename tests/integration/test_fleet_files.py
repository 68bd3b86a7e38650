"""`twelve gen.ansible`'s files themselves: what it writes and says, that ansible-playbook
--syntax-check and ansible-lint (production profile) accept them, the role's defaults and the
play's batching, and the systemd unit the role installs, checked by `systemd-analyze verify`
(the systemd path cannot run here: no systemd as PID 1; tests/integration/test_fleet.py drives
the release path on real hosts)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
import yaml

from conftest import FIXTURES, copy_project, twelve

pytestmark = pytest.mark.slow

NAME = "fleet_app"
BIN = Path(sys.executable).parent
FILES = ["ansible.cfg", "deploy.yml", "group_vars/fleet_app/vars.yml", "inventory.example.yml",
         "roles/fleet_app/defaults/main.yml", "roles/fleet_app/meta/main.yml",
         "roles/fleet_app/tasks/control.yml", "roles/fleet_app/tasks/health.yml",
         "roles/fleet_app/tasks/layout.yml", "roles/fleet_app/tasks/main.yml",
         "roles/fleet_app/tasks/migrate.yml", "roles/fleet_app/tasks/prune.yml",
         "roles/fleet_app/tasks/rollback.yml", "roles/fleet_app/tasks/switch.yml",
         "roles/fleet_app/templates/env.j2", "roles/fleet_app/templates/fleet_app.service.j2",
         "rollback.yml", "vault.example.yml"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    project = copy_project(FIXTURES / NAME, tmp_path_factory.mktemp("gen") / NAME)
    proc = twelve("gen.ansible", cwd=project)
    assert f"* creating rel/ansible/deploy.yml" in proc.stdout
    assert f"-e {NAME}_version=0.1.0" in proc.stdout
    return project


def ansible_env(tmp: Path) -> dict:
    return dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", ANSIBLE_HOME=str(tmp / "home"),
                ANSIBLE_LOCAL_TEMP=str(tmp / "home" / "tmp"), ANSIBLE_NOCOLOR="1")


def test_writes_the_playbooks_and_role_once(project):
    out = project / "rel" / "ansible"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == FILES
    again = twelve("gen.ansible", cwd=project)
    assert again.stdout.count("* identical ") == len(FILES)


def test_a_bad_root_is_refused_with_an_example(tmp_path):
    project = copy_project(FIXTURES / NAME, tmp_path / NAME)
    proc = twelve("gen.ansible", "--root", "srv/x y", cwd=project, check=False)
    assert proc.returncode == 2
    assert "--root 'srv/x y' must be an absolute path" in proc.stderr and "/srv/fleet_app" \
        in proc.stderr
    assert not (project / "rel" / "ansible").exists()


def test_ansible_playbook_syntax_check_passes(project, tmp_path):
    out = project / "rel" / "ansible"
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "inventory.example.yml",
                           "--syntax-check", "deploy.yml", "rollback.yml"], cwd=out,
                          env=ansible_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ansible_lint_passes_with_the_production_profile(project, tmp_path):
    out = project / "rel" / "ansible"
    proc = subprocess.run([str(BIN / "ansible-lint"), "--offline", "--profile", "production",
                           "deploy.yml", "rollback.yml", "roles"], cwd=out,
                          env=ansible_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_batches_stop_at_the_first_failure_and_defaults_keep_five(project):
    out = project / "rel" / "ansible"
    for playbook in ("deploy.yml", "rollback.yml"):
        play, = yaml.safe_load((out / playbook).read_text())
        assert play["max_fail_percentage"] == 0
        assert play["serial"] == "{{ fleet_app_serial | default(1) }}"
    defaults = yaml.safe_load((out / "roles" / NAME / "defaults" / "main.yml").read_text())
    assert defaults[f"{NAME}_keep"] == 5
    assert defaults[f"{NAME}_root"] == f"/srv/{NAME}"
    assert defaults[f"{NAME}_service_manager"] == "systemd"
    assert defaults[f"{NAME}_migrate"] == "bin/migrate"  # the fixture has the overlay
    tasks = (out / "roles" / NAME / "tasks" / "main.yml").read_text()
    assert "inventory_hostname == ansible_play_hosts_all[0]" in tasks
    assert "run_once" not in tasks  # once per batch under serial, not once per deploy


def test_the_role_installs_a_unit_systemd_analyze_verifies(project, tmp_path):
    """The unit template, rendered as the role renders it for a host, with a real release
    under NAME_root/current (ExecStart must exist)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: run scripts/system-deps (Debian package systemd)"
    twelve("release", "--overwrite", cwd=project, env={"TWELVE_ENV": "prod"})
    root = tmp_path / "srv"
    (root / "releases").mkdir(parents=True)
    os.symlink(project / "_build" / "prod" / "rel" / NAME, root / "releases" / "0.1.0")
    os.symlink("releases/0.1.0", root / "current")
    template = project / "rel" / "ansible" / "roles" / NAME / "templates" / f"{NAME}.service.j2"
    unit = tmp_path / f"{NAME}.service"
    unit.write_text(jinja2.Template(template.read_text(), keep_trailing_newline=True)
                    .render(fleet_app_root=str(root), fleet_app_user=NAME))
    text = unit.read_text()
    assert f"ExecStart={root}/current/bin/{NAME} start" in text
    assert f"ExecReload={root}/current/bin/{NAME} restart" in text
    assert f"EnvironmentFile=/etc/{NAME}/{NAME}.env" in text
    proc = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=120)
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines() if NAME in line]
    assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr
