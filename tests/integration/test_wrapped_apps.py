"""Apps a user did not write: a project with no package of its own that serves an app living in
a dependency, its server added through a PEP 735 dependency group; and a setuptools project that
`twelve init` keeps buildable. A wheel that fails to build shows the backend's own words."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conftest import free_port, get, release_env, tree_digest, twelve

pytestmark = pytest.mark.slow

WRAPPED = """\
[project]
name = "metrics"
version = "1.0.0"
# Upstream's app, as published: prometheus_client's WSGI app, made by its factory.
dependencies = ["prometheus-client>=0.20"]

[dependency-groups]
# What the release adds to upstream's dependencies: the server.
release = [{include-group = "server"}]
server = ["gunicorn>=22"]

[tool.twelve]
app = "prometheus_client:make_wsgi_app()"
groups = ["release"]
"""

SETUPTOOLS = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "stapp"
version = "0.1.0"
dependencies = ["gunicorn>=22"]

[tool.twelve]
app = "stapp.web:app"
"""


def project(tmp_path: Path, name: str, pyproject: str) -> Path:
    root = tmp_path / name
    root.mkdir()
    (root / "pyproject.toml").write_text(pyproject)
    twelve("init", cwd=root)
    return root


def test_an_app_from_a_dependency_with_its_server_from_a_group(tmp_path, nodes):
    root = project(tmp_path, "metrics", WRAPPED)
    proc = twelve("release", cwd=root, env={"TWELVE_ENV": "prod"})
    assert "no package of its own to build (no [build-system] in pyproject.toml)" in proc.stdout
    assert "resolving dependencies from [project].dependencies + group release" in proc.stdout
    rel = root / "_build" / "prod" / "rel" / "metrics"
    manifest = json.loads((rel / "releases" / "1.0.0" / "release.json").read_text())
    names = {package["name"].lower() for package in manifest["packages"]}
    assert {"prometheus-client", "gunicorn"} <= {n.replace("_", "-") for n in names}
    assert "metrics" not in names
    port = free_port()
    env = release_env(tmp_path, PORT=str(port), HOST="127.0.0.1", RELEASE_TMP=str(tmp_path / "rt"))
    del env["SECRET_KEY_BASE"]  # the config/runtime.py of `twelve init` reads no secret here
    node = nodes([str(rel / "bin" / "metrics"), "start"], env, port).wait_ready(30)
    status, body, _ = get(node.url("/"))
    assert status == 200 and b"python_gc_objects_collected_total" in body
    assert node.terminate() == 0


def test_a_server_missing_from_every_group_is_named(tmp_path):
    root = tmp_path / "nosrv"
    root.mkdir()
    (root / "pyproject.toml").write_text(WRAPPED.replace('server = ["gunicorn>=22"]',
                                                         'server = ["six"]'))
    proc = twelve("release", cwd=root, check=False)
    assert proc.returncode == 2
    assert "tool.twelve.groups = [\"release\"]" in proc.stderr


def test_init_keeps_a_setuptools_flat_layout_buildable(tmp_path):
    root = tmp_path / "stapp"
    (root / "stapp").mkdir(parents=True)
    (root / "stapp" / "__init__.py").write_text("")
    (root / "stapp" / "web.py").write_text(textwrap.dedent("""\
        def app(environ, start_response):
            start_response("200 OK", [])
            return [b"ok"]
        """))
    (root / "pyproject.toml").write_text(SETUPTOOLS)
    init = twelve("init", cwd=root)
    assert "* updating pyproject.toml: [tool.setuptools.packages.find] include = stapp" \
        in init.stdout
    twelve("release", cwd=root, env={"TWELVE_ENV": "prod"})
    rel = root / "_build" / "prod" / "rel" / "stapp"
    assert (rel / "lib" / "stapp" / "web.py").is_file()
    assert not (rel / "lib" / "config").exists() and not (rel / "lib" / "rel").exists()
    # Without what init wrote, the backend refuses: its own words are shown, nothing is lost.
    before = tree_digest(rel)
    (root / "pyproject.toml").write_text(SETUPTOOLS)
    proc = twelve("release", "--overwrite", cwd=root, env={"TWELVE_ENV": "prod"}, check=False)
    assert proc.returncode == 1
    assert "Multiple top-level packages discovered in a flat-layout" in proc.stderr
    assert "building stapp as a wheel failed" in proc.stderr
    assert tree_digest(rel) == before
