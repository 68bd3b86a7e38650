"""`twelve gen.ansible`: a playbook and a role that roll the release out to a fleet of hosts
over SSH, one batch at a time, health-checked, rolled back by itself — Ansible is the engine,
twelve writes what it runs. Everything lands in ``rel/ansible/``:

- ``deploy.yml``: ``serial`` batches (``NAME_serial``, default 1), ``max_fail_percentage: 0``,
  the role. ``rollback.yml``: every host back to the version it ran before the last deploy.
- ``roles/NAME/``: the deploy (tasks/main.yml). On each host, under ``NAME_root``
  (default /srv/NAME): ``releases/VSN/`` (the extracted tarball, uploaded only when the host's
  copy differs by checksum), ``current -> releases/VSN`` (switched by renaming a new symlink
  over it), ``previous`` (what to roll back to), ``shared/``. Steps: upload, extract into a
  partial directory renamed when complete, ``bin/NAME verify``, ``bin/NAME check`` with the
  host's environment, migrate once per deploy (on ``ansible_play_hosts_all[0]``, the first
  host of the first batch: ``run_once`` would run once *per batch* under ``serial``), switch,
  reload, health check (HTTP on the host and ``bin/NAME pid``); a failing step after the
  switch switches back, reloads and fails the host, which ends the play before the next batch.
  Then versions beyond the last ``NAME_keep`` (5) are removed, never current or previous.
- Two service managers: ``systemd`` (the units of ``gen.systemd`` pointing at
  ``NAME_root/current``, ``systemctl reload`` = zero-downtime restart, migration through
  ``systemd-run`` as the service's user) and ``release`` for hosts without systemd (the
  release's own ``daemon``/``restart``, shared/state and shared/run; what the tests drive).
- The EnvironmentFile (0600) is written from ``NAME_env``, and ``RELEASE_COOKIE`` from
  ``NAME_cookie``: one cookie for every version, so a new version's launcher can restart the
  node an older one started. Both come from Ansible Vault (``group_vars/NAME/vault.yml``,
  described by ``vault.example.yml``), never from the repository.

Templates are ``templates/ansible/``, rendered with ``@KEY@`` like every generator's, so the
Jinja of the playbooks needs no escaping.
"""
from __future__ import annotations

import json
from pathlib import Path

from twelve.errors import UsageError
from twelve.gen.docker import has_migrate
from twelve.gen.files import TEMPLATES, Generated, render
from twelve.gen.systemd import SAFE_PATH, UnitOptions, unit_files, unit_names
from twelve.project import Project

OUTPUT_DIR = "rel/ansible"
SOURCE = TEMPLATES / "ansible"
# Template → where it lands under rel/ansible ("NAME" becomes the release's name).
LAYOUT = {
    "ansible.cfg": "ansible.cfg",
    "deploy.yml": "deploy.yml",
    "rollback.yml": "rollback.yml",
    "inventory.example.yml": "inventory.example.yml",
    "vars.yml": "group_vars/NAME/vars.yml",
    "vault.example.yml": "vault.example.yml",
}
ROLE = "role"

BAD_ROOT = ("--root {value!r} must be an absolute path of letters, digits and . _ + - / "
            "(the hosts' deploy root, e.g. /srv/{name})")
NEXT = """
Deploy (docs/deployment.md, "A fleet with Ansible"):
    cd {out} && cp inventory.example.yml inventory.yml      # your hosts
    ansible-vault create group_vars/{name}/vault.yml        # as vault.example.yml shows
    TWELVE_ENV=prod twelve release                           # with "tar" in steps
    ansible-playbook -i inventory.yml deploy.yml --ask-vault-pass -e {name}_version={version}
Roll back: ansible-playbook -i inventory.yml rollback.yml --ask-vault-pass
"""


def check_root(project: Project, root: str | None) -> str:
    value = root if root is not None else f"/srv/{project.name}"
    if not SAFE_PATH.match(value) or "/../" in f"{value}/" or "//" in value or value == "/":
        raise UsageError(BAD_ROOT.format(value=value, name=project.name))
    return value.rstrip("/")


def ansible_files(project: Project, *, root: str) -> list[Generated]:
    """Every file of rel/ansible: the playbooks, the examples and the role."""
    name = project.name
    units = list(unit_names(project).values())
    values = {
        "NAME": name, "ROOT": root,
        "PROCESSES": json.dumps(["web", *sorted(p for p in project.processes if p != "web")]),
        "UNITS": json.dumps(units),
        "MIGRATE": "bin/migrate" if has_migrate(project) else "",
    }
    files = [Generated(f"{OUTPUT_DIR}/{dest.replace('NAME', name)}",
                       render(f"ansible/{template}", **values))
             for template, dest in LAYOUT.items()]
    role_dir = SOURCE / ROLE
    for path in sorted(p for p in role_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(role_dir).as_posix()
        files.append(Generated(f"{OUTPUT_DIR}/roles/{name}/{relative}",
                               render(f"ansible/{ROLE}/{relative}", **values)))
    return files + unit_templates(project)


def unit_templates(project: Project) -> list[Generated]:
    """gen.systemd's units as Jinja templates of the role: the release root is the host's
    ``NAME_root/current`` and the user ``NAME_user``, decided per host at deploy time."""
    name = project.name
    options = UnitOptions(release_root=f"{{{{ {name}_root }}}}/current",
                          user=f"{{{{ {name}_user }}}}")
    return [Generated(f"{OUTPUT_DIR}/roles/{name}/templates/{Path(unit.path).name}.j2",
                      unit.text)
            for unit in unit_files(project, options, "")
            if unit.path.endswith(".service")]


def next_steps(project: Project) -> str:
    return NEXT.format(out=OUTPUT_DIR, name=project.name, version=project.version)
