"""`twelve gen.docker`: a multi-stage ``Dockerfile`` and a ``.dockerignore``.

The build stage (the official ``python:X.Y-slim`` image of the interpreter twelve runs on)
installs twelve and runs ``TWELVE_ENV=prod twelve release``; the runtime stage is
``debian:<release>-slim`` with only the release in ``/app`` (or ``python:X.Y-slim`` when the
project sets ``include_python = false``), run by a non-root user with a numeric uid,
``STOPSIGNAL SIGTERM`` (the node drains) and an HTTP ``HEALTHCHECK`` through the release's own
interpreter. Nothing else goes into the runtime image: that is what makes it small and what
``tests/integration/test_gen_docker.py`` checks.
"""
from __future__ import annotations

import json
import re
import sys

import twelve
from twelve.builder import pythons
from twelve.errors import UsageError
from twelve.gen.files import Generated, render
from twelve.project import Project

DEBIAN_VERSION = "bookworm"  # the Debian of the official python:X.Y-slim images
UID = 10001                  # the runtime user's uid and gid: not root, not a host user's
PORT = 4000
APP_DIR = "/app"
NODE_COMMANDS = ("npm", "npx", "node", "yarn", "pnpm")
HEALTH_PATH = re.compile(r"^/[A-Za-z0-9._~!$&()*+,;=:@%/?-]*$")

BAD_HEALTH_PATH = ("--health-path {value!r} must be a URL path starting with / (no quotes or "
                   "spaces), e.g. --health-path /healthz")
NO_TWELVE_WHEEL = """
  note: the build stage installs twelve from {wheel}, which is not there yet.
  twelve is not on PyPI: build its wheel there from a twelve checkout,
      uv build --wheel --out-dir {project}/rel/docker /path/to/twelve
  or name another source: twelve gen.docker --force --twelve 'twelve @ git+https://...'
"""
MIGRATE_COMMENT = ("#   docker run --rm -e DATABASE_URL=... -e SECRET_KEY_BASE=... {name} "
                   "/app/bin/migrate")
NEXT = """
Build and run:
    docker build -t {name} .
    docker run --rm -p {port}:{port} -e SECRET_KEY_BASE="$(twelve gen.secret)" {name}
"""


def default_twelve_requirement() -> str:
    return f"./rel/docker/twelve-{twelve.__version__}-py3-none-any.whl"


def image_python(project: Project) -> str:
    """The X.Y of the build stage's python:X.Y-slim: the Python `twelve release` bundles, as
    [tool.twelve] python names it (a version, or an interpreter whose version is asked), else
    the one twelve runs on."""
    if project.python is None:
        return "%d.%d" % sys.version_info[:2]
    if pythons.VERSION.match(project.python):
        return project.python
    return pythons.choose(project.python, project.root).short_version


def docker_files(project: Project, *, twelve_requirement: str,
                 health_path: str) -> list[Generated]:
    if not HEALTH_PATH.match(health_path):
        raise UsageError(BAD_HEALTH_PATH.format(value=health_path))
    python_version = image_python(project)
    runtime_base = ("debian:${DEBIAN_VERSION}-slim" if project.include_python
                    else "python:${PYTHON_VERSION}-slim-${DEBIAN_VERSION}")
    values = {
        "NAME": project.name, "UID": str(UID), "PORT": str(PORT),
        "PYTHON_VERSION": python_version, "DEBIAN_VERSION": DEBIAN_VERSION,
        "BUILD_PACKAGES": " ".join(build_packages(project)),
        "TWELVE_VERSION": twelve.__version__,
        "TWELVE_REQUIREMENT": twelve_requirement.replace('"', '\\"'),
        "RUNTIME_BASE": runtime_base,
        "HEALTHCHECK": json.dumps(healthcheck(project, health_path)),
        "MIGRATE": MIGRATE_COMMENT.format(name=project.name) if has_migrate(project) else "",
    }
    return [Generated("Dockerfile", render("Dockerfile", **values)),
            Generated(".dockerignore", render("dockerignore", **values))]


def build_packages(project: Project) -> list[str]:
    """Debian packages of the build stage: binutils (strip), and Node.js when the project has
    a package.json or an alias runs npm, npx, node, yarn or pnpm (assets built by a step)."""
    packages = ["binutils"]
    words = {w for commands in project.aliases.values() for c in commands
             for w in re.findall(r"[\w.-]+", c)}
    if (project.root / "package.json").is_file() or words & set(NODE_COMMANDS):
        packages += ["nodejs", "npm"]
    return packages


def healthcheck(project: Project, path: str) -> list[str]:
    """An HTTP GET of the node on PORT through the release's interpreter (no curl needed);
    any error or an HTTP status ≥ 400 marks the container unhealthy."""
    python = f"{APP_DIR}/python/bin/python3" if project.include_python else "python3"
    code = ("import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + "
            f"os.environ.get('PORT', '{PORT}') + '{path}', timeout=4)")
    return [python, "-I", "-c", code]


def has_migrate(project: Project) -> bool:
    """Whether an overlay provides bin/migrate (`twelve gen.release` writes one)."""
    return any((overlay / "bin" / "migrate").is_file() for overlay in project.overlays)


def missing_wheel_note(project: Project, requirement: str) -> str | None:
    if requirement != default_twelve_requirement():
        return None
    if (project.root / requirement).is_file():
        return None
    return NO_TWELVE_WHEEL.format(wheel=requirement.removeprefix("./"), project=project.root)


def next_steps(project: Project) -> str:
    return NEXT.format(name=project.name, port=PORT)
