"""The generator subcommands of ``twelve``: ``init``, ``gen.release``, ``gen.systemd``,
``gen.docker``, ``gen.k8s``, ``gen.ansible``. ``register`` adds them to the CLI's parser; each
command loads the project, lets its module compute the files, and writes them with
``twelve.gen.files`` (never overwriting without ``--force``). Generator modules are imported only
when their command runs.

Exit codes: 0 ok (also when existing files were kept), 1 a file could not be written, 2 a bad
option or a project the generator cannot serve (it says what it found), 78 a config file that
fails to evaluate (gen.systemd reads config/runtime.py).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from twelve.errors import OK

KINDS = ("django", "alembic", "sqlalchemy")
DEFAULT_SOCKET = "4000"
UNIT_ENV = "prod"  # units are for servers: their env template is prod's unless TWELVE_ENV says


def register(sub) -> None:
    """Add the generator commands to the ``twelve`` subparsers ``sub``."""
    _add(sub, "init", cmd_init,
         "write rel/env.sh, rel/overlays/ and config/ skeletons",
         "Write the files a project needs for releases, as commented templates: "
         "rel/env.sh (the launcher hook, with the RELEASE_* variables), rel/overlays/, "
         "config/config.py and config/runtime.py (reading PORT, and the secret key and "
         "DATABASE_URL when the project's dependencies show it uses them). Existing files "
         "are kept unless --force.")

    rel = _add(sub, "gen.release", cmd_gen_release,
               "write PKG/release.py (migrate, rollback) and bin/migrate, bin/server overlays",
               "Detect the project's database layer (Django, Alembic, or SQLAlchemy alone) and "
               "write PKG/release.py with migrate() and rollback(), plus the overlays "
               "bin/migrate and bin/server that land next to bin/NAME in the release.")
    rel.add_argument("--kind", choices=KINDS, help="skip detection: the layer to generate for")
    rel.add_argument("--settings", metavar="MODULE",
                     help="Django: the production settings module (default: manage.py's, or "
                          "the production module of split settings)")
    rel.add_argument("--metadata", metavar="MODULE:ATTR",
                     help="SQLAlchemy alone: the MetaData or declarative base holding the tables "
                          "(default: found in the package's source)")

    unit = _add(sub, "gen.systemd", cmd_gen_systemd,
                "write a hardened systemd unit, a socket unit and an EnvironmentFile template",
                "Write rel/systemd/NAME.service (Type=notify, reload = bin/NAME restart, "
                "hardened), NAME.env (the EnvironmentFile template from config/runtime.py, "
                "TWELVE_ENV or prod) and, with --socket, NAME.socket for socket activation.")
    unit.add_argument("--release-root", metavar="PATH",
                      help="where the release is on the server (default: /opt/NAME; with "
                           "versioned releases, /opt/NAME/current)")
    unit.add_argument("--user", metavar="NAME", help="the system user the node runs as "
                                                     "(default: the release name)")
    unit.add_argument("--socket", nargs="?", const=DEFAULT_SOCKET, metavar="[ADDRESS:]PORT",
                      help=f"also write NAME.socket listening there (default {DEFAULT_SOCKET})")
    unit.add_argument("--watchdog", type=int, metavar="SECONDS",
                      help="WatchdogSec=: systemd restarts a node that stops answering")

    fleet = _add(sub, "gen.ansible", cmd_gen_ansible,
                 "write an Ansible playbook and role: rolling, health-checked fleet deploys",
                 "Write rel/ansible/: deploy.yml (serial batches, max_fail_percentage 0; on "
                 "each host upload the tarball when its checksum differs, verify, check, "
                 "migrate once, switch current atomically, reload, health check, roll back by "
                 "itself on failure, keep the last 5 versions), rollback.yml (every host to "
                 "its previous version), roles/NAME/ (systemd hosts with gen.systemd's units, "
                 "or NAME_service_manager=release for hosts without systemd), an inventory "
                 "example and the vault variables it needs.")
    fleet.add_argument("--root", metavar="PATH",
                       help="the deploy root on the hosts (default: /srv/NAME; per host: "
                            "NAME_root in the inventory)")

    docker = _add(sub, "gen.docker", cmd_gen_docker,
                  "write a multi-stage Dockerfile and .dockerignore",
                  "Write a Dockerfile (build stage: twelve release; runtime stage: slim Debian "
                  "with only the release, a non-root user, STOPSIGNAL SIGTERM, HEALTHCHECK) "
                  "and a .dockerignore.")
    docker.add_argument("--twelve", metavar="REQUIREMENT", dest="twelve_requirement",
                        help="what the build stage pip-installs for twelve (default: its wheel "
                             "in rel/docker/)")
    docker.add_argument("--health-path", default="/", metavar="PATH",
                        help="the URL path HEALTHCHECK requests (default: /)")

    k8s = _add(sub, "gen.k8s", cmd_gen_k8s,
               "write Kubernetes manifests that run the release's OCI image",
               "Write rel/k8s/NAME.yaml: a ConfigMap of the non-secret variables "
               "config/runtime.py reads, a Secret template (no values) for the env.secret "
               "ones and RELEASE_COOKIE, a Deployment of the web process (probes, a grace "
               "period above the drain, non-root, read-only root with an emptyDir on /tmp, no "
               "capabilities, seccomp RuntimeDefault), a Service, a Deployment per other "
               "process type, and a migration Job when gen.release's bin/migrate is there. "
               "See docs/containers.md.")
    k8s.add_argument("--image", metavar="REFERENCE",
                     help="the image the pods run (default: NAME:VSN, as `twelve image` tags "
                          "it; name your registry's, e.g. registry.example/hello:0.1.0)")
    k8s.add_argument("--health-path", default="/", metavar="PATH",
                     help="the URL path the readiness and liveness probes request (default: /)")
    k8s.add_argument("--drain-timeout", type=int, default=None, metavar="SECONDS",
                     help="the node's graceful_timeout, if config/runtime.py changes it "
                          "(default 30): the grace period is 15 s more")


def _add(sub, name: str, func, summary: str, description: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=summary, description=description + " Exit codes: 0 ok, "
                            "1 a file could not be written, 2 bad option or project.")
    parser.add_argument("--force", action="store_true",
                        help="overwrite existing files with the generated version")
    parser.add_argument("--project", default=".", metavar="DIR",
                        help="the project's root (default: the current directory)")
    parser.set_defaults(func=func)
    return parser


def _log(line: str) -> None:
    print(line, flush=True)


def _load(args: argparse.Namespace):
    from twelve.project import load_project

    return load_project(Path(args.project))


def cmd_init(args: argparse.Namespace) -> int:
    from twelve.gen import init
    from twelve.gen.files import write_files

    project = _load(args)
    needs = init.detect_needs(project)
    _log(needs.describe())
    write_files(project.root, init.init_files(project, needs), force=args.force, log=_log)
    init.keep_buildable(project, _log)
    _log(init.next_steps(project))
    return OK


def cmd_gen_release(args: argparse.Namespace) -> int:
    from twelve.gen import release
    from twelve.gen.files import write_files

    project = _load(args)
    detection = release.detect(project, args.kind)
    _log(detection.describe())
    files = release.release_files(project, detection, metadata=args.metadata, log=_log,
                                  settings=args.settings)
    write_files(project.root, files, force=args.force, log=_log)
    _log(release.next_steps(project, detection))
    return OK


def cmd_gen_systemd(args: argparse.Namespace) -> int:
    from twelve.gen import systemd
    from twelve.gen.files import write_files

    project = _load(args)
    options = systemd.make_options(project, release_root=args.release_root, user=args.user,
                                   socket=args.socket, watchdog=args.watchdog)
    env_name = os.environ.get("TWELVE_ENV") or UNIT_ENV
    template = systemd.env_template(project, options, env_name=env_name,
                                    build_environ=dict(os.environ), log=_log)
    write_files(project.root, systemd.unit_files(project, options, template), force=args.force,
                log=_log)
    _log(systemd.install_steps(project, options))
    return OK


def cmd_gen_k8s(args: argparse.Namespace) -> int:
    from twelve.gen import k8s
    from twelve.gen.files import write_files

    project = _load(args)
    image = args.image or f"{project.name}:{project.version}"
    env_name = os.environ.get("TWELVE_ENV") or UNIT_ENV
    files = k8s.k8s_files(project, image=image, health_path=args.health_path,
                          drain_timeout=(k8s.DRAIN_TIMEOUT if args.drain_timeout is None
                                         else args.drain_timeout),
                          env_name=env_name, build_environ=dict(os.environ))
    write_files(project.root, files, force=args.force, log=_log)
    _log(k8s.next_steps(project, image))
    return OK


def cmd_gen_ansible(args: argparse.Namespace) -> int:
    from twelve.gen import ansible
    from twelve.gen.files import write_files

    project = _load(args)
    root = ansible.check_root(project, args.root)
    write_files(project.root, ansible.ansible_files(project, root=root), force=args.force,
                log=_log)
    _log(ansible.next_steps(project))
    return OK


def cmd_gen_docker(args: argparse.Namespace) -> int:
    from twelve.gen import docker
    from twelve.gen.files import write_files

    project = _load(args)
    requirement = args.twelve_requirement or docker.default_twelve_requirement()
    files = docker.docker_files(project, twelve_requirement=requirement,
                                health_path=args.health_path)
    write_files(project.root, files, force=args.force, log=_log)
    note = docker.missing_wheel_note(project, requirement)
    if note:
        _log(note.rstrip("\n"))
    _log(docker.next_steps(project))
    return OK
