"""The ``Release``: what is being built, where, for which environment.

Built by one function, ``make_release`` (defaults ← project ← command line), before any I/O.
Steps receive a ``Release`` and return one (``dataclasses.replace`` for changes); the fields a
step may change are marked below, the others are read-only facts about the build.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from twelve.builder.pythons import Python
from twelve.errors import ProjectError
from twelve.project import RELEASE_NAME, Project

DEFAULT_ENV = "dev"
ENV_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Release:
    project: Project
    name: str               # read-only: the release name (bin/NAME)
    version: str            # read-only: releases/VSN
    env: str                # read-only: TWELVE_ENV the release is built for
    root: Path              # read-only: final location, _build/<env>/rel/<name>
    build_config: dict = field(default_factory=dict)  # step-modifiable: frozen build config
    staging: Path | None = None  # set while assembling: the sibling being built
    python: Python | None = None  # read-only, set first by the build: the interpreter built for

    @property
    def version_dir(self) -> Path:
        assert self.staging is not None
        return self.staging / "releases" / self.version

    @property
    def display_root(self) -> str:
        try:
            return os.path.relpath(self.root)
        except ValueError:
            return str(self.root)


def make_release(project: Project, *, name: str | None, version: str | None,
                 env: str, path: str | None) -> Release:
    """The one constructor: project defaults overridden by the command line."""
    if not ENV_NAME.match(env):
        raise ProjectError(f"TWELVE_ENV={env!r} is not a valid environment name",
                           hint="Use lowercase letters, digits and _, e.g. TWELVE_ENV=prod.")
    if name is not None and name != project.name:
        if not RELEASE_NAME.match(name):
            raise ProjectError(f"invalid release name {name!r}: it must match "
                               "^[a-z][a-z0-9_]*$")
        raise ProjectError(f"unknown release {name!r}; this project defines: {project.name}",
                           hint=f"Run `twelve release {project.name}`, or `twelve release`.")
    version = version or project.version
    if not version or "/" in version or version.startswith("."):
        raise ProjectError(f"invalid version {version!r}",
                           hint="Use a version such as 0.1.0 (it names releases/VSN).")
    root = Path(path).resolve() if path else project.root / "_build" / env / "rel" / project.name
    return Release(project=project, name=project.name, version=version, env=env, root=root)
