"""`twelve init`: the files a project needs to become a release, as commented templates
(mix: ``release.init`` plus the ``config/runtime.exs`` of ``phx.new``).

Writes ``rel/env.sh`` (the launcher hook, showing the ``RELEASE_*`` variables), the first
overlay directory (``rel/overlays/``), and ``config/config.py`` and ``config/runtime.py``
skeletons reading ``PORT``, ``SECRET_KEY_BASE`` and ``DATABASE_URL``. Paths follow
``[tool.twelve]`` (``env_sh``, ``overlays``, ``config_dir``). Nothing is overwritten without
``--force``; running it twice changes nothing.
"""
from __future__ import annotations

from pathlib import Path

from twelve.gen.files import Generated, render
from twelve.project import Project

NEXT_STEPS = """
Next:
    edit {runtime} to read what your app needs from the environment
    TWELVE_ENV=prod twelve release
    twelve gen.release      # migrate/rollback helpers, bin/migrate and bin/server
"""


def app_name(project: Project) -> str:
    """The name config files and ``get_env`` use for the app: its top-level package."""
    return project.app_module.split(".", 1)[0]


def init_files(project: Project) -> list[Generated]:
    values = {"NAME": project.name, "APP": app_name(project)}
    config_dir = _relative(project, project.config_dir)
    files = [Generated(_relative(project, project.env_sh), render("env.sh", **values))]
    files.append(Generated(_relative(project, project.main_overlay)))
    files += [
        Generated(f"{config_dir}/config.py", render("config.py", **values)),
        Generated(f"{config_dir}/runtime.py", render("runtime.py", **values)),
    ]
    return files


def next_steps(project: Project) -> str:
    runtime = f"{_relative(project, project.config_dir)}/runtime.py"
    return NEXT_STEPS.format(runtime=runtime)


def _relative(project: Project, path: Path) -> str:
    return path.relative_to(project.root).as_posix()
