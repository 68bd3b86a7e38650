"""pyproject.toml → Project: defaults, validation, and one clear message per mistake."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from twelve.builder.release import make_release
from twelve.errors import ProjectError
from twelve.project import SETTINGS, load_project, settings_table

GOOD = """
[project]
name = "hello-world"
version = "1.2.3"
dependencies = ["Flask>=3", "gunicorn"]

[tool.twelve]
app = "hello.web:app"
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent(text))
    return tmp_path


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ProjectError) as info:
        load_project(write(tmp_path, text))
    assert info.value.exit_code == 2
    return info.value.render()


def test_defaults_and_derived_values(tmp_path):
    project = load_project(write(tmp_path, GOOD))
    assert project.name == "hello_world"  # derived from [project].name, made a valid name
    assert (project.version, project.server, project.include_python) == ("1.2.3", "gunicorn", True)
    assert project.steps == ("assemble",)
    assert project.overlays == (tmp_path.resolve() / "rel/overlays",)
    assert project.lock_file is None and project.app_module == "hello.web"
    with pytest.raises(dataclasses.FrozenInstanceError):
        project.name = "other"


def test_factory_app_and_explicit_values(tmp_path):
    text = GOOD.replace('app = "hello.web:app"', 'app = "hello.web:create_app()"\n'
                        'name = "hw"\ninclude_python = false\noverlays = ["a", "b"]')
    project = load_project(write(tmp_path, text))
    assert (project.app, project.name, project.include_python) == \
        ("hello.web:create_app()", "hw", False)
    assert [p.name for p in project.overlays] == ["overlays", "a", "b"]  # rel/overlays first


def test_unknown_key_suggests_the_near_miss(tmp_path):
    message = error(tmp_path, GOOD + "incldue_python = true\n")
    assert "unknown key tool.twelve.incldue_python; did you mean 'include_python'?" in message


@pytest.mark.parametrize("app", ["hello.web", "hello.web:", ":app", "hello web:app",
                                 "hello.web:create_app(1)"])
def test_bad_app_reference(tmp_path, app):
    message = error(tmp_path, GOOD.replace('"hello.web:app"', f'"{app}"'))
    assert f"tool.twelve.app: {app!r} is not an app reference" in message
    assert '"module:attr" or "module:factory()"' in message


@pytest.mark.parametrize("name", ["Hello", "1hello", "hello-app", "héllo"])
def test_bad_release_name(tmp_path, name):
    message = error(tmp_path, GOOD + f'name = "{name}"\n')
    assert f"invalid release name {name!r}" in message and "^[a-z][a-z0-9_]*$" in message


def test_unknown_server_and_bad_types(tmp_path):
    message = error(tmp_path, GOOD + 'server = "tornado"\ninclude_python = "yes"\n')
    assert "2 problems" in message
    assert "unknown server 'tornado'; allowed: gunicorn, uvicorn" in message
    assert "tool.twelve.include_python: must be true or false, got str 'yes'" in message


def test_server_must_be_a_dependency(tmp_path):
    message = error(tmp_path, GOOD + 'server = "uvicorn"\n')
    assert "does not depend on it; add \"uvicorn\" to [project].dependencies" in message
    no_server = GOOD.replace(', "gunicorn"', "")
    assert "no server" in error(tmp_path, no_server)


def test_missing_sections_and_broken_toml(tmp_path):
    assert "tool.twelve" in error(tmp_path, '[project]\nname = "a"\nversion = "1"\n')
    assert "tool.twelve.app is required" in error(tmp_path, GOOD.replace('app = "hello.web:app"',
                                                                        'server = "gunicorn"'))
    assert "is not valid TOML" in error(tmp_path, "[project\n")
    assert "project.version must be a non-empty string" in error(
        tmp_path, GOOD.replace('version = "1.2.3"', 'dynamic = ["version"]'))


def test_paths_may_not_escape_the_project(tmp_path):
    assert "points outside the project" in error(tmp_path, GOOD + 'config_dir = "../elsewhere"\n')


@pytest.mark.parametrize("steps, message", [
    ('[]', 'the steps must contain "assemble" exactly once'),
    ('["assemble", "assemble"]', 'the steps must contain "assemble" exactly once'),
    ('["assemble", "tar", "tar"]', 'the steps may contain "tar" at most once'),
    ('["tar", "assemble"]', '"tar" must come after "assemble" in the steps'),
    ('["assemble", "tar!"]', "unknown step 'tar!'"),
    ('["assemble", "build"]', "the alias step 'build' must come before \"assemble\""),
    ('["assemble", "tar", "x.steps:sign"]',
     "\"tar\" must be the last step: 'x.steps:sign' after it would change the release but "
     "not its tarball"),
])
def test_steps_validation(tmp_path, steps, message):
    text = GOOD + f"steps = {steps}\n[tool.twelve.aliases]\nbuild = [\"echo hi\"]\n"
    assert message in error(tmp_path, text)


def test_valid_steps_processes_and_aliases(tmp_path):
    text = GOOD + ('steps = ["build", "assemble", "hello.steps:sign", "tar"]\n'
                   '[tool.twelve.processes]\nworker = "hello.worker:main"\n'
                   '[tool.twelve.aliases]\nbuild = "echo one"\n"assets.deploy" = ["a", "b"]\n')
    project = load_project(write(tmp_path, text))
    assert project.steps == ("build", "assemble", "hello.steps:sign", "tar")
    assert project.processes == {"worker": "hello.worker:main", "web": "server"}
    assert project.aliases == {"build": ("echo one",), "assets.deploy": ("a", "b")}


def test_bad_processes_and_aliases(tmp_path):
    bad_process = GOOD + '[tool.twelve.processes]\nworker = "hello.worker"\n'
    assert "process 'worker' = 'hello.worker': use \"module:function\"" in error(tmp_path,
                                                                                 bad_process)
    bad_alias = GOOD + '[tool.twelve.aliases]\nbuild = 3\n'
    assert "alias 'build' must be a command string" in error(tmp_path, bad_alias)


def test_make_release_names_versions_and_paths(tmp_path):
    project = load_project(write(tmp_path, GOOD))
    release = make_release(project, name=None, version=None, env="prod", path=None)
    assert release.root == tmp_path.resolve() / "_build/prod/rel/hello_world"
    assert make_release(project, name=None, version="2.0.0", env="dev",
                        path=str(tmp_path / "out")).version == "2.0.0"
    with pytest.raises(ProjectError, match="unknown release 'other'; this project defines: "
                                           "hello_world"):
        make_release(project, name="other", version=None, env="prod", path=None)
    with pytest.raises(ProjectError, match="TWELVE_ENV"):
        make_release(project, name=None, version=None, env="Prod!", path=None)


def test_every_setting_is_documented():
    table = settings_table()
    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.key}`" in table and f"`{setting.key}`" in docs


def test_cli_reports_project_errors_with_exit_2(tmp_path):
    write(tmp_path, GOOD.replace('"hello.web:app"', '"hello.web"'))
    proc = subprocess.run([sys.executable, "-m", "twelve", "release", "--project",
                           str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "not an app reference" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_app_table_serves_every_interface(tmp_path):
    deps = GOOD.replace('["Flask>=3", "gunicorn"]', '["django", "gunicorn", "uvicorn"]')
    table = 'app = { wsgi = "site.wsgi:application", asgi = "site.asgi:application" }'
    project = load_project(write(tmp_path, deps.replace('app = "hello.web:app"', table)))
    assert project.server == "gunicorn" and project.app == "site.wsgi:application"
    assert project.apps == {"wsgi": "site.wsgi:application", "asgi": "site.asgi:application"}
    asgi = load_project(write(tmp_path, deps.replace('app = "hello.web:app"', table)
                              + 'server = "uvicorn"\n'))
    assert asgi.app == "site.asgi:application"
    wsgi_only = deps.replace('app = "hello.web:app"', 'app = { wsgi = "site.wsgi:application" }')
    assert "serves none of the app table's interfaces (wsgi)" in error(
        tmp_path, wsgi_only + 'server = "uvicorn"\n')
    assert "an app table takes the keys wsgi and asgi" in error(
        tmp_path, deps.replace('app = "hello.web:app"', 'app = { rsgi = "a:b" }'))


@pytest.mark.parametrize("text, message", [
    ('[project]\nname = "x"\nversion = "1"\ntool = "x"\n', "[tool.twelve] is missing"),
    ('[project]\nname = "x"\ndynamic = 5\n[tool.twelve]\napp = "x:app"\n',
     "project.version must be a non-empty string"),
])
def test_tables_of_the_wrong_type_are_problems_not_tracebacks(tmp_path, text, message):
    assert message in error(tmp_path, text)


WRAPPER = """
[project]
name = "wrapper"
version = "1.0.0"
dependencies = ["some-wsgi-service>=1"]

[dependency-groups]
release = ["psycopg>=3", {include-group = "server"}]
Server = ["gunicorn>=22"]
dev = ["pytest"]

[tool.twelve]
app = "service.wsgi:app"
groups = ["release"]
"""


def test_no_build_system_means_no_package_of_its_own(tmp_path):
    project = load_project(write(tmp_path, WRAPPER))
    assert project.package is False and project.build_backend is None
    assert project.groups == ("release",)
    assert project.server == "gunicorn"  # found through release → server (names normalised)
    built = load_project(write(tmp_path, WRAPPER.replace(
        "[project]", "[build-system]\nrequires = [\"hatchling\"]\n"
        "build-backend = \"hatchling.build\"\n\n[project]")))
    assert built.package is True and built.build_backend == "hatchling.build"
    explicit = load_project(write(tmp_path, WRAPPER + "package = true\n"))
    assert explicit.package is True


@pytest.mark.parametrize("groups, message", [
    ('["relase"]', "no dependency group 'relase' in [dependency-groups]; did you mean 'release'?"),
    ('["prod"]', "no dependency group 'prod' in [dependency-groups]; add it, e.g. "
                 "[dependency-groups] prod = [\"gunicorn>=22\"]"),
])
def test_unknown_groups_are_named(tmp_path, groups, message):
    assert message in error(tmp_path, WRAPPER.replace('groups = ["release"]',
                                                      f"groups = {groups}"))


def test_a_group_that_includes_itself_is_a_problem(tmp_path):
    text = WRAPPER.replace('Server = ["gunicorn>=22"]',
                           'Server = ["gunicorn>=22", {include-group = "release"}]')
    assert "includes itself (release -> Server -> release)" in error(tmp_path, text)


def test_no_server_anywhere_points_to_a_dependency_group(tmp_path):
    text = WRAPPER.replace('Server = ["gunicorn>=22"]', 'Server = ["six"]')
    message = error(tmp_path, text)
    assert "no server: the release depends on none of" in message
    assert "tool.twelve.groups = [\"release\"]" in message


def test_strip_is_the_default_and_the_keep_lists_are_normalised(tmp_path):
    project = load_project(write(tmp_path, GOOD))
    assert (project.strip, project.keep_sources, project.keep_stdlib) == (True, (), ())
    text = GOOD + 'strip = false\nkeep_sources = ["Numba", "torch_geometric"]\n' \
                  'keep_stdlib = ["lib2to3", "pydoc_data"]\n'
    project = load_project(write(tmp_path, text))
    assert project.strip is False
    assert project.keep_sources == ("numba", "torch-geometric")  # as the lock names them
    assert project.keep_stdlib == ("lib2to3", "pydoc_data")


def test_keep_stdlib_names_only_modules_twelve_leaves_out(tmp_path):
    message = error(tmp_path, GOOD + 'keep_stdlib = ["lib2to4"]\n')
    assert "'lib2to4' is not a module twelve leaves out; did you mean 'lib2to3'?" in message
    message = error(tmp_path, GOOD + 'keep_stdlib = ["json"]\n')
    assert "every other module is always shipped" in message
    message = error(tmp_path, GOOD + 'keep_sources = ["not a name"]\n')
    assert "'not a name' is not a distribution name" in message


def test_optimize_is_a_level_for_stripped_bytecode(tmp_path):
    assert load_project(write(tmp_path, GOOD)).optimize == 0
    assert load_project(write(tmp_path, GOOD + "optimize = 2\n")).optimize == 2
    message = error(tmp_path, GOOD + "optimize = 3\n")
    assert "tool.twelve.optimize: 3 is not an optimization level; it is 0 (the default), " \
           "1 (python -O) or 2 (python -OO)" in message
    assert "tool.twelve.optimize: must be an integer, got bool True" in \
        error(tmp_path, GOOD + "optimize = true\n")
    assert "tool.twelve.optimize applies to the bytecode strip = true ships" in \
        error(tmp_path, GOOD + "optimize = 1\nstrip = false\n")
