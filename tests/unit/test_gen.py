"""Generators without a release: the file writer, `twelve init`, `twelve gen.release` detection,
and the generated migrate()/rollback() run against real Alembic, Django and SQLAlchemy."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import tree_digest, twelve
from twelve.gen import files
from twelve.gen.files import Generated, render, write_files
from twelve.runtime.config import store as runtime_config

PYPROJECT = """\
[project]
name = "{name}"
version = "0.1.0"
dependencies = [{deps}]

[tool.twelve]
app = "{app}"
{extra}
"""


def write_project(root: Path, *, deps=("flask", "gunicorn"), name="shop", app="shop.web:app",
                  extra="", package=True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(
        name=name, deps=", ".join(f'"{d}"' for d in deps), app=app, extra=extra))
    if package:
        pkg = root / "src" / app.split(".")[0]
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").write_text("")
    return root


def lines(proc) -> list[str]:
    return [line for line in proc.stdout.splitlines() if line.startswith("* ")]


# -- the writer ---------------------------------------------------------------------------------

def test_render_fills_placeholders_and_drops_empty_optional_lines(tmp_path, monkeypatch):
    (tmp_path / "t").write_text("a=@NAME@ $HOME ${X:-1}\n@OPTIONAL@\nb=@NAME@@NAME@\n")
    monkeypatch.setattr(files, "TEMPLATES", tmp_path)
    assert render("t", NAME="x", OPTIONAL="") == "a=x $HOME ${X:-1}\nb=xx\n"
    assert render("t", NAME="x", OPTIONAL="k=1\nj=2") == "a=x $HOME ${X:-1}\nk=1\nj=2\nb=xx\n"
    with pytest.raises(KeyError, match="@OPTIONAL@"):
        render("t", NAME="x")


def test_every_template_renders_to_valid_python_or_sh(tmp_path):
    from types import SimpleNamespace

    from twelve.gen import init, release

    values = dict(NAME="shop", APP="shop", USER="shop", RELEASE_ROOT="/opt/shop",
                  ENV_FILE="/etc/shop/shop.env", WATCHDOG="", SOCKET_REQUIRES="",
                  LISTEN="4000", SETTINGS="shop.settings", SCRIPT_LOCATION="shop:migrations",
                  METADATA="shop.db:metadata",
                  SERVER_ENV=release.SERVER_SETTINGS.format(settings="shop.settings.production"))
    shop = SimpleNamespace(name="shop", app_module="shop.web")
    runtime_variants = [init.runtime_values(shop, init.Needs("Django", "SECRET_KEY", 50, "django")),
                        init.runtime_values(shop, init.Needs(init.NO_FRAMEWORK, None, 0, None))]
    for template in sorted(files.TEMPLATES.iterdir()):
        if template.name == "runtime.py":
            for variant in runtime_variants:
                compile(render(template.name, **values, **variant), template.name, "exec")
        elif template.suffix == ".py":
            compile(render(template.name, **values), template.name, "exec")
        elif template.suffix == ".sh":
            script = tmp_path / template.name
            script.write_text(render(template.name, **values))
            assert subprocess.run(["sh", "-n", str(script)]).returncode == 0, template.name


def test_write_files_creates_skips_and_forces(tmp_path):
    log: list[str] = []
    items = [Generated("rel/overlays"), Generated("rel/bin/x", "#!/bin/sh\n", 0o755),
             Generated("a.txt", "one\n")]
    assert write_files(tmp_path, items, force=False, log=log.append) == []
    assert log == ["* creating rel/overlays/", "* creating rel/bin/x", "* creating a.txt"]
    assert (tmp_path / "rel/bin/x").stat().st_mode & 0o777 == 0o755

    (tmp_path / "a.txt").write_text("mine\n")
    log.clear()
    assert write_files(tmp_path, items, force=False, log=log.append) == ["a.txt"]
    assert log[:3] == ["* skipping rel/overlays/ (exists)", "* identical rel/bin/x",
                       "* skipping a.txt (exists)"]
    assert "run again with --force" in log[3]
    assert (tmp_path / "a.txt").read_text() == "mine\n"

    log.clear()
    write_files(tmp_path, items, force=True, log=log.append)
    assert "* overwriting a.txt" in log and (tmp_path / "a.txt").read_text() == "one\n"


def test_write_files_restores_a_mode_under_a_strict_umask(tmp_path):
    old = os.umask(0o077)
    try:
        write_files(tmp_path, [Generated("bin/migrate", "x\n", 0o755)], force=False,
                    log=lambda _: None)
    finally:
        os.umask(old)
    assert (tmp_path / "bin/migrate").stat().st_mode & 0o777 == 0o755


def test_write_files_refuses_a_directory_where_a_file_goes(tmp_path):
    (tmp_path / "a.txt").mkdir()
    with pytest.raises(files.TwelveError, match="a.txt exists and is a directory") as e:
        write_files(tmp_path, [Generated("a.txt", "x")], force=True, log=lambda _: None)
    assert e.value.exit_code == 1


# -- twelve init --------------------------------------------------------------------------------

def test_init_creates_then_is_idempotent_and_non_destructive(tmp_path):
    root = write_project(tmp_path / "shop")
    first = twelve("init", cwd=root)
    assert lines(first) == ["* config/runtime.py reads PORT, SECRET_KEY_BASE (Flask)",
                            "* creating rel/env.sh", "* creating rel/overlays/",
                            "* creating config/config.py", "* creating config/runtime.py"]
    before = tree_digest(root)

    again = twelve("init", cwd=root)
    assert tree_digest(root) == before
    assert lines(again)[1:] == ["* identical rel/env.sh", "* skipping rel/overlays/ (exists)",
                            "* identical config/config.py", "* identical config/runtime.py"]

    (root / "config/runtime.py").write_text("# mine\n")
    kept = twelve("init", cwd=root)
    assert "* skipping config/runtime.py (exists)" in lines(kept)
    assert (root / "config/runtime.py").read_text() == "# mine\n"
    assert kept.returncode == 0 and "--force" in kept.stdout

    forced = twelve("init", "--force", cwd=root)
    assert "* overwriting config/runtime.py" in lines(forced)
    assert tree_digest(root) == before


def test_init_follows_the_paths_of_tool_twelve(tmp_path):
    root = write_project(tmp_path / "shop", extra='config_dir = "settings"\nenv_sh = "deploy/env.sh"'
                                                  '\noverlays = ["deploy/files", "more"]')
    proc = twelve("init", "--project", str(root), cwd=tmp_path)
    assert lines(proc)[1:] == ["* creating deploy/env.sh", "* creating deploy/files/",
                           "* creating settings/config.py", "* creating settings/runtime.py"]


def test_init_templates_show_the_release_variables_and_read_the_three_variables(tmp_path):
    root = write_project(tmp_path / "shop", deps=("flask", "flask-sqlalchemy", "gunicorn"))
    proc = twelve("init", cwd=root)
    assert lines(proc)[0] == ("* config/runtime.py reads PORT, SECRET_KEY_BASE, DATABASE_URL "
                              "(Flask; dependency flask-sqlalchemy)")
    env_sh = (root / "rel/env.sh").read_text()
    for var in ("RELEASE_ROOT", "RELEASE_NAME", "RELEASE_VSN", "RELEASE_COMMAND",
                "RELEASE_PROG", "RELEASE_TMP", "RELEASE_COOKIE"):
        assert var in env_sh
    assert all(line.startswith("#") or not line.strip() for line in env_sh.splitlines()), \
        "every line of the template is a comment: sourcing it changes nothing"
    assert subprocess.run(["sh", "-n", str(root / "rel/env.sh")]).returncode == 0

    runtime_py = root / "config/runtime.py"
    build = runtime_config.evaluate_build_config(root / "config", "prod", {})
    assert build == {"shop": {"greeting": "Hello", "debug": False}}
    environ = {"SECRET_KEY_BASE": "k" * 64, "PORT": "8001",
               "DATABASE_URL": "postgresql://u@db/shop", "STATE_DIRECTORY": str(tmp_path)}
    cfg = runtime_config.evaluate_runtime_config(runtime_py, build, "prod", environ, server=True)
    assert cfg["shop"]["database_url"] == "postgresql://u@db/shop"
    assert cfg["shop"]["secret_key_base"] == "k" * 64
    assert cfg["twelve"]["port"] == 8001
    rows = runtime_config.describe_environment(runtime_py, build, "prod", {})
    declared = {variable.name: variable for variable, _ in rows}
    assert {"PORT", "SECRET_KEY_BASE", "DATABASE_URL"} <= declared.keys()
    assert declared["SECRET_KEY_BASE"].secret and declared["SECRET_KEY_BASE"].required

    with pytest.raises(runtime_config.ConfigError) as e:
        runtime_config.evaluate_runtime_config(runtime_py, build, "prod", {"PORT": "x"})
    assert {p.name for p in e.value.problems} == {"SECRET_KEY_BASE", "PORT"}
    dev = runtime_config.evaluate_runtime_config(runtime_py, build, "dev",
                                                 {"STATE_DIRECTORY": str(tmp_path)})
    assert dev["shop"]["database_url"] == f"sqlite:///{tmp_path}/shop.db"


def evaluate_generated_runtime(root: Path, environ: dict) -> dict:
    rows = runtime_config.describe_environment(root / "config/runtime.py", {}, "prod", environ)
    return {variable.name: variable for variable, _ in rows if variable.name not in SERVER_VARIABLES}


SERVER_VARIABLES = {"HOST", "WEB_CONCURRENCY", "TWELVE_ACCESS_LOG", "TWELVE_SERVER",
                    "TWELVE_MAX_WORKERS", "TWELVE_BOOT_TIMEOUT", "TWELVE_WORKER_TIMEOUT"}


@pytest.mark.parametrize("deps, groups, expected, reads", [
    (("django", "psycopg[binary]", "gunicorn"), "", {"PORT", "SECRET_KEY", "DATABASE_URL",
                                                     "STATE_DIRECTORY"},
     "PORT, SECRET_KEY, DATABASE_URL (Django; dependency django)"),
    (("flask", "gunicorn"), "", {"PORT", "SECRET_KEY_BASE"}, "PORT, SECRET_KEY_BASE (Flask)"),
    (("fastapi", "uvicorn"), 'server = "uvicorn"', {"PORT"}, "PORT (FastAPI)"),
    (("starlette", "asyncpg", "uvicorn"), 'server = "uvicorn"', {"PORT", "DATABASE_URL", "STATE_DIRECTORY"},
     "PORT, DATABASE_URL (Starlette; dependency asyncpg)"),
    # An app from a dependency, its server and driver in a group the release includes.
    (("prometheus-client",), 'groups = ["release"]\n[dependency-groups]\n'
                             'release = ["gunicorn", {include-group = "db"}]\ndb = ["psycopg2"]',
     {"PORT", "DATABASE_URL", "STATE_DIRECTORY"},
     "PORT, DATABASE_URL (an app of no known framework; dependency psycopg2)"),
    (("gunicorn",), "", {"PORT"}, "PORT (an app of no known framework)"),
])
def test_init_reads_only_what_the_framework_and_dependencies_use(tmp_path, deps, groups,
                                                                 expected, reads):
    root = write_project(tmp_path / "shop", deps=deps, extra=groups)
    proc = twelve("init", cwd=root)
    assert lines(proc)[0] == f"* config/runtime.py reads {reads}"
    declared = evaluate_generated_runtime(root, {})
    assert set(declared) == expected
    # Every variable of a prod boot has a default or is the one secret: with that secret set,
    # the release boots, and without it, only the secret is missing.
    secret = {name for name, v in declared.items() if v.secret}
    assert secret <= {"SECRET_KEY", "SECRET_KEY_BASE"} and len(secret) <= 1
    environ = {name: "k" * 64 for name in secret}
    cfg = runtime_config.evaluate_runtime_config(root / "config/runtime.py", {}, "prod",
                                                 {**environ, "STATE_DIRECTORY": str(tmp_path)},
                                                 server=True)
    assert cfg["twelve"]["port"] == 4000
    if secret:
        with pytest.raises(runtime_config.ConfigError) as e:
            runtime_config.evaluate_runtime_config(root / "config/runtime.py", {}, "prod", {})
        assert {p.name for p in e.value.problems} == secret


def test_init_without_a_project_says_so_with_exit_2(tmp_path):
    proc = twelve("init", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "no pyproject.toml" in proc.stderr
    assert not (tmp_path / "rel").exists()


# -- gen.release: detection ---------------------------------------------------------------------

@pytest.mark.parametrize("deps, files_at_root, kind, reason", [
    (("django", "gunicorn"), (), "Django", "dependency django"),
    (("flask", "gunicorn"), ("manage.py",), "Django", "manage.py"),
    (("Alembic>=1", "flask", "gunicorn"), (), "Alembic", "dependency alembic"),
    (("flask", "gunicorn"), ("alembic.ini",), "Alembic", "alembic.ini"),
    (("sqlalchemy", "alembic", "flask", "gunicorn"), (), "Alembic", "dependency alembic"),
    (("Flask-SQLAlchemy", "flask", "gunicorn"), (), "SQLAlchemy without Alembic",
     "dependency flask-sqlalchemy"),
])
def test_gen_release_detects_the_database_layer(tmp_path, deps, files_at_root, kind, reason):
    root = write_project(tmp_path / "shop", deps=deps)
    for name in files_at_root:
        (root / name).write_text("")
    (root / "src/shop/db.py").write_text("from sqlalchemy import MetaData\nmetadata = MetaData()\n")
    proc = twelve("gen.release", cwd=root)
    assert proc.stdout.startswith(f"* detected {kind} ({reason}")
    assert (root / "src/shop/release.py").is_file()


def test_gen_release_refuses_a_project_without_a_database_layer(tmp_path):
    root = write_project(tmp_path / "shop")
    proc = twelve("gen.release", cwd=root, check=False)
    assert proc.returncode == 2
    assert "no database layer found" in proc.stderr and "--kind" in proc.stderr
    assert not (root / "src/shop/release.py").exists() and not (root / "rel").exists()


def test_gen_release_asks_when_django_and_alembic_are_both_there(tmp_path):
    root = write_project(tmp_path / "shop", deps=("django", "alembic", "gunicorn"))
    proc = twelve("gen.release", cwd=root, check=False)
    assert proc.returncode == 2 and "both Django" in proc.stderr and "--kind" in proc.stderr
    ok = twelve("gen.release", "--kind", "django", cwd=root)
    assert "SETTINGS = \"shop.settings\"" in (root / "src/shop/release.py").read_text()
    assert ok.stdout.startswith("* detected Django (dependency django)")


def test_gen_release_needs_the_app_package(tmp_path):
    root = write_project(tmp_path / "shop", deps=("django", "gunicorn"), package=False)
    proc = twelve("gen.release", cwd=root, check=False)
    assert proc.returncode == 2
    assert "cannot find the package 'shop'" in proc.stderr and "src/shop/" in proc.stderr


def test_gen_release_overlays_sit_next_to_bin_name(tmp_path):
    root = write_project(tmp_path / "shop", deps=("django", "gunicorn"))
    twelve("gen.release", cwd=root)
    migrate = root / "rel/overlays/bin/migrate"
    server = root / "rel/overlays/bin/server"
    assert migrate.stat().st_mode & 0o777 == 0o755 and server.stat().st_mode & 0o777 == 0o755
    assert migrate.read_text().rstrip().endswith(
        'exec "$(dirname -- "$SELF")/shop" eval "shop.release.migrate()"')
    assert server.read_text().rstrip().endswith('exec "$(dirname -- "$SELF")/shop" start')


def test_django_settings_come_from_manage_py(tmp_path):
    root = write_project(tmp_path / "shop", deps=("django", "gunicorn"))
    (root / "manage.py").write_text(
        'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.conf.production")\n')
    proc = twelve("gen.release", cwd=root)
    assert "* using the Django settings shop.conf.production" in proc.stdout


# Wagtail's project template: manage.py and wsgi.py name the development settings.
SPLIT_SETTINGS = {
    "__init__.py": "",
    "base.py": "DEBUG = False\nINSTALLED_APPS = []\nUSE_TZ = True\n",
    "dev.py": "from .base import *\nDEBUG = True\nSECRET_KEY = 'django-insecure-dev'\n",
    "production.py": "from .base import *\nSECRET_KEY = 'prod-' + 'x' * 50\n",
}


def write_split_settings(root: Path, modules: dict[str, str] = SPLIT_SETTINGS) -> Path:
    settings = root / "src/shop/settings"
    settings.mkdir(parents=True)
    for name, text in modules.items():
        (settings / name).write_text(text)
    (root / "manage.py").write_text(
        'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings.dev")\n')
    (root / "src/shop/wsgi.py").write_text(
        "import os\nfrom django.core.wsgi import get_wsgi_application\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.settings.dev')\n"
        "application = get_wsgi_application()\n")
    return settings


def test_gen_release_picks_the_production_module_of_split_settings(tmp_path):
    root = write_project(tmp_path / "shop", deps=("django", "gunicorn"),
                         app="shop.wsgi:application")
    write_split_settings(root)
    proc = twelve("gen.release", cwd=root)
    assert "* using the Django settings shop.settings.production" in proc.stdout
    assert ("  note: shop.settings.dev is one module of the split settings shop.settings; the "
            "release uses shop.settings.production") in proc.stdout
    assert ("  note: src/shop/wsgi.py defaults DJANGO_SETTINGS_MODULE to shop.settings.dev: "
            "`bin/shop start` serves with those settings") in proc.stdout
    assert 'SETTINGS = "shop.settings.production"' in (root / "src/shop/release.py").read_text()
    server = (root / "rel/overlays/bin/server").read_text()
    assert ("DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-shop.settings.production}\n"
            "export DJANGO_SETTINGS_MODULE\n") in server


@pytest.mark.parametrize("modules, problem", [
    ({"__init__.py": "", "base.py": "", "dev.py": "", "staging.py": ""},
     "none of them is named production or prod"),
    ({"__init__.py": "", "dev.py": "", "prod.py": "", "production.py": ""},
     "shop.settings.prod and shop.settings.production are all named for production"),
])
def test_gen_release_asks_for_settings_when_the_split_is_ambiguous(tmp_path, modules, problem):
    root = write_project(tmp_path / "shop", deps=("django", "gunicorn"),
                         app="shop.wsgi:application")
    write_split_settings(root, modules)
    proc = twelve("gen.release", cwd=root, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: the Django settings shop.settings.dev are split "
                                  f"(shop.settings: {', '.join(sorted(m[:-3] for m in modules if m != '__init__.py'))}) and {problem}")
    assert "twelve gen.release --settings shop.settings." in proc.stderr
    assert "shop.settings.dev" in proc.stderr.split("candidates: ")[1]
    assert not (root / "src/shop/release.py").exists()
    ok = twelve("gen.release", "--settings", "shop.settings.staging", cwd=root)
    assert "* using the Django settings shop.settings.staging" in ok.stdout
    assert 'SETTINGS = "shop.settings.staging"' in (root / "src/shop/release.py").read_text()


def test_gen_release_refuses_a_settings_value_that_is_no_module_name(tmp_path):
    root = write_project(tmp_path / "shop", deps=("django", "gunicorn"))
    proc = twelve("gen.release", "--settings", "shop/settings.py", cwd=root, check=False)
    assert proc.returncode == 2
    assert "--settings 'shop/settings.py' is not a dotted module name" in proc.stderr
    alembic = write_project(tmp_path / "other", deps=("alembic", "flask", "gunicorn"))
    proc = twelve("gen.release", "--settings", "shop.settings", cwd=alembic, check=False)
    assert proc.returncode == 2 and not (alembic / "src/shop/release.py").exists()
    assert "--settings names Django settings, but the project's database layer is Alembic" \
        in proc.stderr


def test_the_build_warns_when_the_app_defaults_to_debug_settings(tmp_path):
    from twelve import django_settings

    root = write_project(tmp_path / "shop", deps=("django", "gunicorn"),
                         app="shop.wsgi:application")
    settings = write_split_settings(root)
    warning = django_settings.debug_warning(root, "shop.wsgi")
    assert warning == django_settings.DEBUG_AT_BUILD.format(file="src/shop/wsgi.py",
                                                            settings="shop.settings.dev")
    (root / "src/shop/wsgi.py").write_text(
        "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.settings.production')\n")
    assert django_settings.debug_warning(root, "shop.wsgi") is None
    (settings / "base.py").write_text("DEBUG = True\n")  # inherited through the star import
    assert django_settings.debug_warning(root, "shop.wsgi") is not None
    (settings / "production.py").write_text("from .base import *\nDEBUG = get_env('x', 'debug')\n")
    assert django_settings.debug_warning(root, "shop.wsgi") is None


def test_twelve_release_for_prod_says_the_app_defaults_to_debug_settings(tmp_path):
    root = write_project(tmp_path / "shop", deps=("django", "gunicorn"),
                         app="shop.wsgi:application")
    write_split_settings(root)
    # The warning comes first; a build config that fails stops the build right after it.
    (root / "config").mkdir()
    (root / "config/config.py").write_text("raise RuntimeError('stop here')\n")
    prod = twelve("release", cwd=root, check=False, env={"TWELVE_ENV": "prod"})
    assert prod.returncode == 78, prod.stderr
    warning = ("  warning: src/shop/wsgi.py defaults DJANGO_SETTINGS_MODULE to shop.settings.dev, "
               "which set DEBUG = True")
    assert warning in prod.stdout
    dev = twelve("release", cwd=root, check=False, env={"TWELVE_ENV": "dev"})
    assert dev.returncode == 78 and "DEBUG = True" not in dev.stdout


@pytest.mark.parametrize("source, ref", [
    ("from sqlalchemy import MetaData\nmetadata = MetaData()\n", "shop.db:metadata"),
    ("import sqlalchemy as sa\nmeta = sa.MetaData(schema='x')\n", "shop.db:meta"),
    ("from sqlalchemy.orm import DeclarativeBase\nclass Base(DeclarativeBase):\n    pass\n",
     "shop.db:Base.metadata"),
    ("from sqlalchemy.orm import declarative_base\nModel = declarative_base()\n",
     "shop.db:Model.metadata"),
    ("from flask_sqlalchemy import SQLAlchemy\ndb = SQLAlchemy()\n", "shop.db:db.metadata"),
])
def test_sqlalchemy_metadata_is_found_in_the_package(tmp_path, source, ref):
    root = write_project(tmp_path / "shop", deps=("sqlalchemy", "flask", "gunicorn"))
    (root / "src/shop/db.py").write_text(source)
    proc = twelve("gen.release", cwd=root)
    assert f"* using the tables of {ref}" in proc.stdout
    assert f'METADATA = "{ref}"' in (root / "src/shop/release.py").read_text()


def test_sqlalchemy_metadata_none_or_several_asks_for_metadata(tmp_path):
    root = write_project(tmp_path / "shop", deps=("sqlalchemy", "flask", "gunicorn"))
    none = twelve("gen.release", cwd=root, check=False)
    assert none.returncode == 2 and "no SQLAlchemy MetaData found in src/shop/" in none.stderr
    assert "--metadata shop.db:metadata" in none.stderr

    (root / "src/shop/a.py").write_text("from sqlalchemy import MetaData\nm = MetaData()\n")
    (root / "src/shop/b.py").write_text("from sqlalchemy import MetaData\nm = MetaData()\n")
    several = twelve("gen.release", cwd=root, check=False)
    assert several.returncode == 2 and "shop.a:m, shop.b:m" in several.stderr

    bad = twelve("gen.release", "--metadata", "shop.b.m", cwd=root, check=False)
    assert bad.returncode == 2 and "is not module:attribute" in bad.stderr
    twelve("gen.release", "--metadata", "shop.b:m", cwd=root)
    assert 'METADATA = "shop.b:m"' in (root / "src/shop/release.py").read_text()


@pytest.mark.parametrize("ini_location, expected, note", [
    (None, "shop:migrations", "does not exist yet"),
    ("src/shop/migrations", "shop:migrations", None),
    ("%(here)s/src/shop/db/alembic", "shop:db/alembic", None),
    ("shop:migrations", "shop:migrations", None),
    ("migrations", "shop:migrations", "is outside the package"),
])
def test_alembic_migrations_are_found_inside_the_package(tmp_path, ini_location, expected,
                                                          note):
    root = write_project(tmp_path / "shop", deps=("alembic", "flask", "gunicorn"))
    if ini_location is not None:
        (root / "alembic.ini").write_text(f"[alembic]\nscript_location = {ini_location}\n")
        for sub in ("src/shop/migrations", "src/shop/db/alembic", "migrations"):
            (root / sub).mkdir(parents=True, exist_ok=True)
    proc = twelve("gen.release", cwd=root)
    assert f"* using the Alembic migrations in {expected}" in proc.stdout
    assert f'SCRIPT_LOCATION = "{expected}"' in (root / "src/shop/release.py").read_text()
    if note:
        assert note in proc.stdout
    else:
        assert "note:" not in proc.stdout


# -- the generated code, run against the real libraries -----------------------------------------

RUN_RELEASE_TASK = """
import sys
sys.path.insert(0, {src!r})
from twelve.runtime.config import store as config
config.evaluate_runtime_config(None, {{"shop": {{"database_url": {url!r}}}}}, "prod", {{}})
import shop.release
{call}
"""


def run_task(root: Path, db: Path, call: str, **env) -> subprocess.CompletedProcess:
    code = RUN_RELEASE_TASK.format(src=str(root / "src"), url=f"sqlite:///{db}", call=call)
    environ = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=root, env={**environ, **env}, timeout=120)


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}


def test_generated_alembic_tasks_upgrade_and_downgrade(tmp_path):
    pytest.importorskip("alembic")
    root = write_project(tmp_path / "shop", deps=("alembic", "sqlalchemy", "flask", "gunicorn"))
    from alembic import command
    from alembic.config import Config

    # `alembic init src/shop/migrations`: alembic's own env.py and alembic.ini
    command.init(Config(str(root / "alembic.ini")), str(root / "src/shop/migrations"))
    (root / "src/shop/migrations/versions/a1_items.py").write_text(textwrap.dedent("""
        import sqlalchemy as sa
        from alembic import op
        revision, down_revision, branch_labels, depends_on = "a1", None, None, None
        def upgrade():
            op.create_table("items", sa.Column("id", sa.Integer, primary_key=True))
        def downgrade():
            op.drop_table("items")
    """))
    proc = twelve("gen.release", cwd=root)
    assert "* using the Alembic migrations in shop:migrations" in proc.stdout
    db = tmp_path / "state" / "shop.db"
    db.parent.mkdir()
    up = run_task(root, db, "shop.release.migrate()")
    assert up.returncode == 0, up.stderr
    assert f"migrated sqlite:///{db} to head" in up.stdout
    assert {"items", "alembic_version"} <= tables(db)
    down = run_task(root, db, "shop.release.rollback('base')")
    assert down.returncode == 0, down.stderr
    assert "items" not in tables(db)


def test_generated_django_tasks_migrate_and_roll_back(tmp_path):
    pytest.importorskip("django")
    root = write_project(tmp_path / "shop", deps=("django", "gunicorn"), app="shop.wsgi:application")
    pkg = root / "src/shop"
    db = tmp_path / "shop.sqlite3"
    (pkg / "settings.py").write_text(textwrap.dedent(f"""
        SECRET_KEY = "test"
        INSTALLED_APPS = ["shop.notes"]
        DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {str(db)!r}}}}}
        USE_TZ = True
    """))
    (pkg / "notes/migrations").mkdir(parents=True)
    (pkg / "notes/__init__.py").write_text("")
    (pkg / "notes/models.py").write_text(
        "from django.db import models\nclass Note(models.Model):\n    text = models.TextField()\n")
    (pkg / "notes/migrations/__init__.py").write_text("")
    (pkg / "notes/migrations/0001_initial.py").write_text(textwrap.dedent("""
        from django.db import migrations, models
        class Migration(migrations.Migration):
            initial = True
            operations = [migrations.CreateModel("Note", fields=[
                ("id", models.AutoField(primary_key=True)), ("text", models.TextField())])]
    """))
    twelve("gen.release", cwd=root)
    up = run_task(root, db, "shop.release.migrate()")
    assert up.returncode == 0, up.stderr
    assert "notes_note" in tables(db)
    down = run_task(root, db, "shop.release.rollback('notes', 'zero')")
    assert down.returncode == 0, down.stderr
    assert "notes_note" not in tables(db)


def test_generated_django_tasks_use_production_settings_and_warn_of_debug(tmp_path):
    pytest.importorskip("django")
    root = write_project(tmp_path / "shop", deps=("django", "gunicorn"),
                         app="shop.wsgi:application")
    db = tmp_path / "shop.sqlite3"
    settings = write_split_settings(root)
    (settings / "base.py").write_text(SPLIT_SETTINGS["base.py"] + "DATABASES = {'default': {"
                                      f"'ENGINE': 'django.db.backends.sqlite3', 'NAME': {str(db)!r}}}}}\n")
    twelve("gen.release", cwd=root)
    migrated = run_task(root, db, "shop.release.migrate()")
    assert (migrated.returncode, migrated.stderr) == (0, "")
    dev = run_task(root, db, "shop.release.migrate()", DJANGO_SETTINGS_MODULE="shop.settings.dev")
    assert dev.returncode == 0, dev.stderr
    assert dev.stderr == ("warning: the Django settings shop.settings.dev have DEBUG = True in a "
                          "prod release; point DJANGO_SETTINGS_MODULE at the production settings\n")


def test_generated_sqlalchemy_tasks_create_missing_tables_and_refuse_rollback(tmp_path):
    root = write_project(tmp_path / "shop", deps=("sqlalchemy", "flask", "gunicorn"))
    (root / "src/shop/models.py").write_text(textwrap.dedent("""
        from sqlalchemy import Integer
        from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
        class Base(DeclarativeBase):
            pass
        class Item(Base):
            __tablename__ = "items"
            id: Mapped[int] = mapped_column(Integer, primary_key=True)
    """))
    twelve("gen.release", cwd=root)
    db = tmp_path / "new" / "dir" / "shop.db"  # its directory is created
    up = run_task(root, db, "shop.release.migrate()")
    assert up.returncode == 0, up.stderr
    assert tables(db) == {"items"} and "(create_all)" in up.stdout
    assert run_task(root, db, "shop.release.migrate()").returncode == 0, "idempotent"
    down = run_task(root, db, "shop.release.rollback('x')")
    assert down.returncode == 1 and "rollback needs versioned migrations" in down.stderr
    assert "Traceback" not in down.stderr


# -- the docs say what the generators do --------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_generator_is_documented():
    import argparse

    from twelve.gen import commands

    sub = argparse.ArgumentParser().add_subparsers()
    commands.register(sub)
    reference, deployment = (DOCS / "commands.md").read_text(), (DOCS / "deployment.md").read_text()
    for name in sub.choices:
        assert f"`twelve {name}" in reference and f"twelve {name}" in deployment, name


def test_the_documented_gen_release_output_is_the_real_one():
    from twelve.gen import release

    detected = release.Detection("alembic", ("dependency alembic",)).describe()
    text = (DOCS / "deployment.md").read_text()
    assert detected in text
    assert release.USING_SCRIPTS.format(ref="hello:migrations") in text


def test_the_templates_ship_in_twelves_wheel(tmp_path):
    """Non-.py files under src/twelve are package data: a wheel install has the templates."""
    import zipfile

    repo = DOCS.parent
    proc = subprocess.run([sys.executable, "-m", "uv", "build", "--wheel", "--out-dir",
                           str(tmp_path), str(repo)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    [wheel] = tmp_path.glob("twelve-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in files.TEMPLATES.rglob("*"):  # gen.ansible's are in a folder of their own
        if template.is_file():
            assert f"twelve/gen/templates/{template.relative_to(files.TEMPLATES)}" in names
