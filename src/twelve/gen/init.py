"""`twelve init`: the files a project needs to become a release, as commented templates
(mix: ``release.init`` plus the ``config/runtime.exs`` of ``phx.new``).

Writes ``rel/env.sh`` (the launcher hook, showing the ``RELEASE_*`` variables), the first
overlay directory (``rel/overlays/``), and ``config/config.py`` and ``config/runtime.py``
skeletons. Paths follow ``[tool.twelve]`` (``env_sh``, ``overlays``, ``config_dir``). Nothing is
overwritten without ``--force``; running it twice changes nothing.

``config/runtime.py`` reads only what the app is likely to use, judged from the release's
dependencies (``[project].dependencies`` and the groups of ``tool.twelve.groups``): always
``PORT``; the secret key of the framework (Django: ``SECRET_KEY``, 50+ characters, as Django
wants; Flask: ``SECRET_KEY_BASE``), none for FastAPI, Starlette or an app of no known framework
(a plain WSGI callable, an app from a dependency), which would otherwise fail to boot for a
variable it never reads; and ``DATABASE_URL`` (with a SQLite default under ``STATE_DIRECTORY``)
only when a database driver or ORM is a dependency.

``twelve init`` never makes a buildable project unbuildable. setuptools' automatic discovery in
a flat layout takes every top-level directory for a package, so the ``config/`` and ``rel/``
folders it creates would make ``uv build`` fail ("Multiple top-level packages discovered in a
flat-layout"). For such a project ``init`` names the project's own package in pyproject.toml
(``[tool.setuptools.packages.find] include``), which is what discovery found before; where it
cannot tell which package that is, it says what to add.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from twelve.gen.files import Generated, render
from twelve.project import Project, requirement_name

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

# The framework's distribution → (its name, the secret variable, its minimum length).
FRAMEWORKS = {"django": ("Django", "SECRET_KEY", 50), "flask": ("Flask", "SECRET_KEY_BASE", 64),
              "fastapi": ("FastAPI", None, 0), "starlette": ("Starlette", None, 0)}
NO_FRAMEWORK = "an app of no known framework"
DATABASE_DISTRIBUTIONS = frozenset((
    "django", "sqlalchemy", "flask-sqlalchemy", "sqlmodel", "alembic", "peewee", "tortoise-orm",
    "psycopg", "psycopg-binary", "psycopg2", "psycopg2-binary", "asyncpg", "aiosqlite",
    "pymysql", "mysqlclient", "aiomysql", "dj-database-url", "databases"))
READS = "* config/runtime.py reads {variables} ({why})"
IMPORT_PATH = "from pathlib import Path"
DATABASE = '''
# A writable directory for state: systemd's StateDirectory= sets STATE_DIRECTORY (the units of
# `twelve gen.systemd` use /var/lib/@NAME@); never inside the release, which may be read-only.
state_dir = env.path("STATE_DIRECTORY", default=Path.home() / ".local" / "state" / "@NAME@",
                     help="writable directory for the default SQLite database")

config("@APP@",
       database_url=env.url("DATABASE_URL", default=f"sqlite:///{state_dir}/@APP@.db",
                            example="postgresql://@APP@:password@localhost/@APP@",
                            help="database URL"))'''
SECRET_PROD = '''    config("@APP@", @KEY@=env.secret(
        "@VAR@", min_length=@MIN@,
        help="signs sessions and cookies; generate one with `twelve gen.secret`"))'''
SECRET_DEV = '''else:
    # Development and tests: a fixed, public value, so nothing needs setting to start.
    config("@APP@", @KEY@="dev-only-@DASHED@-" + "x" * @MIN@)'''


@dataclass(frozen=True)
class Needs:
    """What config/runtime.py reads, judged from the release's dependencies."""

    framework: str            # "Flask", or NO_FRAMEWORK
    secret: str | None        # the secret key's variable
    min_length: int
    database: str | None      # the dependency that needs DATABASE_URL

    def describe(self) -> str:
        names = ["PORT"] + [v for v in (self.secret,) if v]
        names += ["DATABASE_URL"] if self.database else []
        why = [f"{self.framework}"] + ([f"dependency {self.database}"] if self.database else [])
        return READS.format(variables=", ".join(names), why="; ".join(why))


def detect_needs(project: Project) -> Needs:
    names = [requirement_name(r) for r in project.release_dependencies]
    framework = next((n for n in FRAMEWORKS if n in names), None)
    label, secret, min_length = FRAMEWORKS.get(framework, (NO_FRAMEWORK, None, 0))
    database = next((n for n in names if n in DATABASE_DISTRIBUTIONS), None)
    return Needs(label, secret, min_length, database)


def runtime_values(project: Project, needs: Needs) -> dict[str, str]:
    """The optional parts of templates/runtime.py, filled for ``needs``."""
    def fill(text: str) -> str:
        key = (needs.secret or "").lower()
        return (text.replace("@NAME@", project.name).replace("@APP@", app_name(project))
                .replace("@KEY@", key).replace("@VAR@", needs.secret or "")
                .replace("@MIN@", str(needs.min_length)).replace("@DASHED@", key.replace("_", "-")))
    return {"FRAMEWORK": needs.framework,
            "IMPORT_PATH": IMPORT_PATH if needs.database else "",
            "DATABASE": fill(DATABASE) if needs.database else "",
            "SECRET_PROD": fill(SECRET_PROD) if needs.secret else "",
            "SECRET_DEV": fill(SECRET_DEV) if needs.secret else ""}


NEXT_STEPS = """
Next:
    edit {runtime} to read what your app needs from the environment
    TWELVE_ENV=prod twelve release
    twelve gen.release      # migrate/rollback helpers, bin/migrate and bin/server
"""


def app_name(project: Project) -> str:
    """The name config files and ``get_env`` use for the app: its top-level package."""
    return project.app_module.split(".", 1)[0]


def init_files(project: Project, needs: Needs | None = None) -> list[Generated]:
    needs = needs or detect_needs(project)
    values = {"NAME": project.name, "APP": app_name(project)}
    config_dir = _relative(project, project.config_dir)
    files = [Generated(_relative(project, project.env_sh), render("env.sh", **values))]
    files.append(Generated(_relative(project, project.main_overlay)))
    files += [
        Generated(f"{config_dir}/config.py", render("config.py", **values)),
        Generated(f"{config_dir}/runtime.py",
                  render("runtime.py", **values, **runtime_values(project, needs))),
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
