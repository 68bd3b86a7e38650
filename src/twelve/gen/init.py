"""`twelve init`: the files a project needs to become a release, as commented templates
(mix: ``release.init`` plus the ``config/runtime.exs`` of ``phx.new``).

Writes ``rel/env.sh`` (the launcher hook, showing the ``RELEASE_*`` variables), the first
overlay directory (``rel/overlays/``), and ``config/config.py`` and ``config/runtime.py``
skeletons reading ``PORT``, ``SECRET_KEY_BASE`` and ``DATABASE_URL``. Paths follow
``[tool.twelve]`` (``env_sh``, ``overlays``, ``config_dir``). Nothing is overwritten without
``--force``; running it twice changes nothing.

``twelve init`` never makes a buildable project unbuildable. setuptools' automatic discovery in
a flat layout takes every top-level directory for a package, so the ``config/`` and ``rel/``
folders it creates would make ``uv build`` fail ("Multiple top-level packages discovered in a
flat-layout"). For such a project ``init`` names the project's own package in pyproject.toml
(``[tool.setuptools.packages.find] include``), which is what discovery found before; where it
cannot tell which package that is, it says what to add.
"""
from __future__ import annotations

from pathlib import Path

from twelve.gen.files import Generated, render
from twelve.project import Project

# setuptools' flat-layout discovery skips these names (setuptools.discovery.FlatLayout*Finder).
NOT_DISCOVERED = frozenset((
    "ci", "bin", "debian", "doc", "docs", "documentation", "manpages", "news", "newsfragments",
    "changelog", "test", "tests", "unit_test", "unit_tests", "example", "examples", "scripts",
    "tools", "util", "utils", "python", "build", "dist", "venv", "env", "requirements", "tasks",
    "fabfile", "site_scons", "benchmark", "benchmarks", "exercise", "exercises", "htmlcov",
    "setup", "conftest"))
SETUPTOOLS_FIND = """
[tool.setuptools.packages.find]
# Written by `twelve init`: setuptools' automatic discovery would also take {dirs} (twelve's
# files) for packages of this project, and `uv build` would fail.
include = ["{package}", "{package}.*"]
"""
SETUPTOOLS_PATCHED = "* updating pyproject.toml: [tool.setuptools.packages.find] include = {package}"
SETUPTOOLS_AMBIGUOUS = ("  warning: setuptools' automatic discovery will take {dirs} for packages "
                        "of this project and `uv build` will fail; name your package in "
                        "pyproject.toml, e.g.\n    [tool.setuptools.packages.find]\n"
                        "    include = [\"PKG\", \"PKG.*\"]")

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


def keep_buildable(project: Project, log) -> None:
    """Name the project's package for setuptools when its flat-layout discovery would take
    twelve's folders for packages (see the module docstring)."""
    root = project.root
    if (not project.package or not (project.build_backend or "").startswith("setuptools")
            or "setuptools" in project.tool_tables or (root / "setup.py").exists()
            or (root / "setup.cfg").exists() or (root / "src").is_dir()):
        return
    ours = [d for d in (project.config_dir, project.env_sh.parent, project.main_overlay)
            if d.parent == root or d.parent.parent == root]
    dirs = sorted({_relative(project, d).split("/")[0] for d in ours}
                  - NOT_DISCOVERED)
    if not dirs:
        return
    packages = sorted(d.name for d in root.iterdir()
                      if d.is_dir() and (d / "__init__.py").is_file() and d.name.isidentifier()
                      and d.name not in NOT_DISCOVERED and d.name not in dirs)
    shown = ", ".join(f"{d}/" for d in dirs)
    if len(packages) != 1:
        log(SETUPTOOLS_AMBIGUOUS.format(dirs=shown))
        return
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text + ("" if text.endswith("\n") else "\n")
                         + SETUPTOOLS_FIND.format(dirs=shown, package=packages[0]))
    log(SETUPTOOLS_PATCHED.format(package=packages[0]))


def next_steps(project: Project) -> str:
    runtime = f"{_relative(project, project.config_dir)}/runtime.py"
    return NEXT_STEPS.format(runtime=runtime)


def _relative(project: Project, path: Path) -> str:
    return path.relative_to(project.root).as_posix()
