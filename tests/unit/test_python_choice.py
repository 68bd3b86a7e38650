"""[tool.twelve] python: which installed interpreter a release is built for, probed rather than
assumed to be twelve's own, and checked against requires-python first. Real interpreters of
this machine; a test that needs one it lacks skips naming it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from dataclasses import replace
from pathlib import Path

import pytest

from twelve.builder import interpreter, pythons, references
from twelve.builder import stdlib as stdlib_module
from twelve.builder.release import make_release
from twelve.errors import BuildError, ProjectError
from twelve.project import load_project

BUILDER = Path(os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable))
DEBIAN = Path("/usr/bin/python3.11")


def other_minor() -> pythons.Python:
    """An installed CPython whose X.Y is not the builder's, or skip saying what is missing."""
    mine = sysconfig.get_python_version()
    for version, exe in pythons.installed():
        if not version.startswith(mine + ".") and _minor(version) >= 8:
            return pythons.probe(exe)
    pytest.skip(f"no CPython other than {mine} installed (looked in `uv python dir`, "
                "~/.pyenv/versions and python3.X on PATH)")


def _minor(version: str) -> int:
    return int(version.split(".")[1])


def other_installation() -> Path:
    if not DEBIAN.is_file() or Path(os.path.realpath(DEBIAN)) == BUILDER:
        pytest.skip(f"{DEBIAN} is missing or is the interpreter twelve runs on")
    return DEBIAN


def write_project(root: Path, twelve: str = "", project: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "pick"\nversion = "0.1.0"\ndependencies = ["waitress>=3"]\n'
        f'{project}\n[tool.twelve]\napp = "pick.web:app"\n{twelve}\n')
    return root


# -- probing -----------------------------------------------------------------------------------

def test_probing_the_builders_python_gives_what_its_own_sysconfig_says():
    found = pythons.builder_python()
    assert found.executable == BUILDER
    assert found.full_version == sys.version
    assert found.short_version == sysconfig.get_python_version()
    assert found.soabi == sysconfig.get_config_var("SOABI")
    assert found.cache_tag == sys.implementation.cache_tag
    assert found.builtins == tuple(sorted(sys.builtin_module_names))
    assert (found.stdlib / "os.py").is_file() and found.lib_dynload.is_dir()


def test_the_builders_python_describes_itself_as_its_probe_would(monkeypatch):
    """The default interpreter is described in-process (no interpreter started), with the
    very PROBE code: the same description as running it."""
    probed = subprocess.run([str(BUILDER), "-I", "-c", pythons.PROBE], capture_output=True,
                            text=True, env={}, check=True).stdout
    runs = []
    monkeypatch.setattr(pythons.subprocess, "run", lambda *a, **k: runs.append(a))
    assert pythons.builder_python() == pythons._described(json.loads(probed))
    assert runs == []


def test_probing_another_installation_describes_that_one_not_the_builder():
    exe = other_installation()
    found = pythons.probe(exe)
    own = subprocess.run([str(exe), "-c", "import sys; print(sys.version)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert found.full_version == own and found.executable == exe
    assert (found.stdlib / "os.py").is_file()
    assert not found.stdlib.is_relative_to(sys.base_prefix)
    assert "sys" in found.builtins


def test_probing_what_is_not_a_python_is_a_build_error(tmp_path):
    fake = tmp_path / "python3.12"
    fake.write_text("#!/bin/sh\necho not python\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(BuildError, match="failed \\(exit 3\\)"):
        pythons.probe(fake)


def test_a_probe_is_kept_until_the_executable_changes(tmp_path, monkeypatch):
    """A rebuild does not start the interpreter again: what it said is kept in the cache, by
    its real path, size and mtime."""
    exe = tmp_path / "python3"
    exe.symlink_to(BUILDER)
    cache = tmp_path / "cache"
    first = pythons.probe(exe, cache)
    assert len(list(cache.iterdir())) == 1
    runs = []
    real_run = subprocess.run
    monkeypatch.setattr(pythons.subprocess, "run",
                        lambda *a, **k: runs.append(a) or real_run(*a, **k))
    assert pythons.probe(exe, cache) == first and runs == []
    assert pythons.choose(None, tmp_path, cache).executable == BUILDER and runs == []
    fake = tmp_path / "python3.12"   # another file at another path: probed, and refused
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(BuildError):
        pythons.probe(fake, cache)
    assert len(runs) == 1 and len(list(cache.iterdir())) == 1
    os.utime(fake, ns=(1, 1))   # changed since: probed again, not taken from the cache
    with pytest.raises(BuildError):
        pythons.probe(fake, cache)
    assert len(runs) == 2


# -- the setting -------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["3.12", "/usr/bin/python3.12", "./py/bin/python3"])
def test_python_takes_a_version_or_a_path(tmp_path, value):
    project = load_project(write_project(tmp_path, f'python = "{value}"'))
    assert project.python == value


@pytest.mark.parametrize("value, problem", [('"three"', "neither a version X.Y nor a path"),
                                            ("3.12", "must be a string")])
def test_a_python_that_is_neither_is_a_project_error(tmp_path, value, problem):
    with pytest.raises(ProjectError, match="tool.twelve.python") as caught:
        load_project(write_project(tmp_path, f"python = {value}"))
    assert problem in str(caught.value)


# -- choosing ----------------------------------------------------------------------------------

def test_no_python_means_the_builders_own(tmp_path):
    assert pythons.choose(None, tmp_path).executable == BUILDER


def test_a_version_picks_an_installed_interpreter_of_that_version(tmp_path):
    wanted = other_minor().short_version
    chosen = pythons.choose(wanted, tmp_path)
    assert chosen.short_version == wanted and chosen.executable != BUILDER
    assert chosen.soabi != sysconfig.get_config_var("SOABI")


def test_a_path_picks_that_installation(tmp_path):
    exe = other_installation()
    assert pythons.choose(str(exe), tmp_path).executable == exe


def test_a_version_not_installed_lists_what_is_and_how_to_get_it(tmp_path):
    with pytest.raises(BuildError) as caught:
        pythons.choose("3.98", tmp_path)
    message = str(caught.value)
    assert pythons.NOT_INSTALLED.format(version="3.98") in message
    assert "Installed interpreters:" in message and str(BUILDER) in message
    assert caught.value.hint == pythons.INSTALL_HINT.format(version="3.98")
    assert caught.value.exit_code == 1


def test_a_path_that_does_not_exist_is_a_build_error(tmp_path):
    with pytest.raises(BuildError, match="does not exist"):
        pythons.choose("py/bin/python3.12", tmp_path)


# -- requires-python ---------------------------------------------------------------------------

def test_requires_python_that_excludes_the_choice_names_the_interpreters_found():
    builder = pythons.builder_python()
    with pytest.raises(BuildError) as caught:
        pythons.check_requires_python(">=3.99", builder, None)
    message = str(caught.value)
    assert message.startswith(pythons.EXCLUDED.format(
        spec=">=3.99", version=builder.version, exe=BUILDER, why=pythons.DEFAULT_WHY))
    assert f"{builder.version:<9} {BUILDER}" in message
    assert "uv python install" in caught.value.hint and caught.value.exit_code == 1


def test_requires_python_hint_names_an_installed_version_that_fits():
    other = other_minor()
    with pytest.raises(BuildError) as caught:
        pythons.check_requires_python(f"=={other.short_version}.*", pythons.builder_python(),
                                      None)
    assert f"{other.executable}   (fits)" in str(caught.value)
    assert f'python = "{other.short_version}"' in caught.value.hint


def test_requires_python_that_allows_the_choice_passes():
    builder = pythons.builder_python()
    pythons.check_requires_python(f">={builder.short_version}", builder, None)
    pythons.check_requires_python(None, builder, None)


def test_requires_python_that_is_no_specifier_is_a_project_error():
    with pytest.raises(ProjectError, match="not a version specifier") as caught:
        pythons.check_requires_python("=>3.11", pythons.builder_python(), None)
    assert caught.value.exit_code == 2


# -- what follows the choice -------------------------------------------------------------------

def test_the_cache_entry_follows_the_chosen_interpreter():
    mine, other = interpreter.find_source(), interpreter.find_source(other_installation())
    assert interpreter.cache_key(mine) != interpreter.cache_key(other)
    described = interpreter.describe(other, ())
    assert (described.version, described.soabi) == (other.version, other.soabi)
    assert described.executable == f"bin/python{other.short_version}"


def test_zipped_stdlib_uses_the_bundled_versions_names(tmp_path):
    prepared, stdlib = tmp_path / "cache", tmp_path / "rel" / "lib" / "python3.12"
    (prepared).mkdir()
    (prepared / stdlib_module.ZIP_FILE).write_bytes(b"zip")
    for rel in ("os.py", "__pycache__/os.cpython-312.pyc", "json/__init__.py",
                "lib-dynload/_ssl.so", "venv/__init__.py"):
        (stdlib / rel).parent.mkdir(parents=True, exist_ok=True)
        (stdlib / rel).write_text(rel)
    stdlib_module.use_zipped_stdlib(prepared, stdlib)
    assert (stdlib.parent / "python312.zip").read_bytes() == b"zip"
    assert (stdlib / "os.pyc").read_text() == "__pycache__/os.cpython-312.pyc"  # the landmark
    assert sorted(p.name for p in stdlib.iterdir()) == ["lib-dynload", "os.pyc", "venv"]


def test_module_references_are_looked_up_in_the_chosen_standard_library(tmp_path):
    other = other_minor()
    project = load_project(write_project(tmp_path / "p", "include_python = false"))
    release = make_release(project, name=None, version=None, env="prod", path=None)
    release = replace(release, python=other, staging=tmp_path / "staging")
    paths = references._stdlib_paths(release)
    assert str(other.stdlib) in paths and str(other.lib_dynload) in paths
    assert not any(p.startswith(sys.base_prefix + "/") for p in paths)


def test_builtin_modules_are_the_chosen_interpreters(tmp_path):
    """Debian builds _bisect into its executable; pyenv's CPython has it in lib-dynload."""
    debian = pythons.probe(other_installation())
    if "_bisect" not in debian.builtins or "_bisect" in sys.builtin_module_names:
        pytest.skip("needs a chosen interpreter with _bisect built in and a builder without")
    project = load_project(write_project(
        tmp_path / "p", 'include_python = false\n[tool.twelve.processes]\nworker = '
        '"_bisect:bisect"'))
    release = make_release(project, name=None, version=None, env="prod", path=None)
    release = replace(release, python=debian, staging=tmp_path / "staging")
    (tmp_path / "staging" / "lib" / "pick").mkdir(parents=True)
    (tmp_path / "staging" / "lib" / "pick" / "web.py").write_text("app = None\n")
    references.check_references(release, [])
