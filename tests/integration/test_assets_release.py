"""`twelve release` on the example builds its assets as a step (npm ci, esbuild, twelve digest)
before assembling, and a failing esbuild stops the release with esbuild's own error and exit
code while the previous release stays byte-for-byte as it was."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess

import pytest

from conftest import EXAMPLES, copy_project, tree_digest, twelve

pytestmark = pytest.mark.slow

GENERATED = re.compile(r"-[0-9a-f]{32}(\.[^./]*)?$|\.(gz|br)$|^cache_manifest\.json$")


def remove_generated_assets(project):
    """What a fresh clone has: no esbuild output, no digests, no manifest."""
    static = project / "src/hello/static"
    for built in ("css", "js"):
        shutil.rmtree(static / built, ignore_errors=True)
    for path in list(static.rglob("*")):
        if path.is_file() and GENERATED.search(path.name):
            path.unlink()
    assert sorted(p.name for p in static.rglob("*") if p.is_file()) == ["logo.svg"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    project = copy_project(EXAMPLES / "hello", tmp_path_factory.mktemp("assets") / "hello")
    remove_generated_assets(project)
    proc = twelve("release", cwd=project, env={"TWELVE_ENV": "prod"})
    return project, project / "_build/prod/rel/hello", proc


def test_release_runs_assets_deploy_before_assembling(built):
    project, release, proc = built
    lines = [line for line in proc.stdout.splitlines() if line.startswith("* ")]
    steps = [next(i for i, line in enumerate(lines) if line.startswith(prefix))
             for prefix in ("* running test -x node_modules/.bin/esbuild || npm ci",
                            "* running esbuild assets/js/app.js",
                            "* running twelve digest",
                            "* digested 5 files in src/hello/static",
                            "* copying python")]
    assert steps == sorted(steps), lines
    static = release / "lib/hello/static"
    data = json.loads((static / "cache_manifest.json").read_text())
    assert {"css/app.css", "js/app.js", "images/logo.svg", "css/app.css.map",
            "js/app.js.map"} == set(data["latest"])
    for logical, digested in data["latest"].items():
        content = (static / digested).read_bytes()
        assert data["digests"][digested]["digest"] == hashlib.md5(content).hexdigest()
        assert (static / f"{digested}.gz").is_file()
    css = (static / data["latest"]["css/app.css"]).read_text()
    assert data["latest"]["images/logo.svg"].split("/")[-1] in css, "url() digested"
    manifest = json.loads((release / "releases/0.1.0/release.json").read_text())
    assert "lib/hello/static/cache_manifest.json" in manifest["files"]


def test_a_failing_esbuild_stops_the_release_and_keeps_the_previous_one(built):
    project, release, _ = built
    before = tree_digest(release)
    app_js = project / "assets/js/app.js"
    original = app_js.read_text()
    app_js.write_text(original + "\nfunction broken( {\n")
    try:
        direct = subprocess.run(
            ["node_modules/.bin/esbuild", "assets/js/app.js", "--bundle", "--outdir=/dev/null"],
            cwd=project, capture_output=True, text=True)
        proc = twelve("release", "--overwrite", cwd=project, env={"TWELVE_ENV": "prod"},
                      check=False)
    finally:
        app_js.write_text(original)
    assert direct.returncode != 0
    assert proc.returncode == direct.returncode, "esbuild's own exit code"
    assert "[ERROR]" in proc.stderr and "assets/js/app.js:" in proc.stderr, "esbuild's message"
    assert re.search(r"alias 'assets.build' stopped: `esbuild .*` exited with "
                     f"{direct.returncode}", proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "* copying python" not in proc.stdout, "nothing assembled"
    assert tree_digest(release) == before
    leftovers = [p.name for p in release.parent.iterdir() if p.name != release.name]
    assert leftovers == [], f"half-written build dirs left behind: {leftovers}"
