"""The example's release as an artifact: two clean builds give the same tarball, which holds no
secret and runs wherever it is extracted, read-only too; the SBOM is valid CycloneDX; a leaked secret fails the build."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tarfile
import tomllib
from email.parser import HeaderParser
from pathlib import Path

import pytest

from conftest import (EXAMPLES, SECRET, TWELVE, copy_project, free_port, get, release_env,
                      tree_digest, twelve)

pytestmark = pytest.mark.slow

EPOCH = 1_700_000_000
ENV = {"TWELVE_ENV": "prod", "SOURCE_DATE_EPOCH": str(EPOCH)}


STEP_MODULE = """\
import json
from dataclasses import replace


def record(release):
    (release.project.root / "step.json").write_text(json.dumps(
        {"name": release.name, "version": release.version,
         "assembled": (release.version_dir / "release.json").is_file()}))
    # a step after assemble changes the release: the manifest (and the tarball) must follow
    (release.version_dir / "built_by_step.txt").write_text("added after assemble\\n")
    web = release.staging / "lib" / "hello" / "web.py"
    web.write_text(web.read_text() + "\\n# touched by release_steps:record\\n")
    return replace(release)
"""


def with_tar_step(project: Path) -> Path:
    """The example's steps, then a "module:function" step of the project's own, then "tar"."""
    path = project / "pyproject.toml"
    text = path.read_text()
    steps = tomllib.loads(text)["tool"]["twelve"].get("steps", ["assemble"])
    line = "steps = " + json.dumps(steps + ["release_steps:record", "tar"])
    (project / "release_steps.py").write_text(STEP_MODULE)
    if re.search(r"(?m)^steps\s*=", text):
        text = re.sub(r"(?m)^steps\s*=.*$", line, text, count=1)
    else:
        text = text.replace("[tool.twelve]\n", f"[tool.twelve]\n{line}\n", 1)
    path.write_text(text)
    return project


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Two clean builds of the example, one after the other (a clock that leaks in shows),
    from separate copies into separate _build dirs, under umasks 022 and 002, with the same
    SOURCE_DATE_EPOCH and nothing else in common: no seed, no shared _build."""
    base = tmp_path_factory.mktemp("artifacts")
    first = with_tar_step(copy_project(EXAMPLES / "hello", base / "one" / "hello"))
    second = with_tar_step(copy_project(EXAMPLES / "hello", base / "two" / "hello"))
    build(cwd=first, umask=0o022)
    # From elsewhere, as the `twelve` script runs: step modules come from the project.
    build("--project", "hello", cwd=second.parent, umask=0o002)
    return first, second


def build(*args: str, cwd: Path, umask: int) -> None:
    proc = subprocess.run([*TWELVE, "release", *args], cwd=cwd, env=dict(os.environ, **ENV),
                          text=True, stdin=subprocess.DEVNULL, capture_output=True,
                          umask=umask, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def tarball(project: Path) -> Path:
    return project / "_build" / "prod" / "hello-0.1.0.tar.gz"


def differing_members(a: Path, b: Path) -> list[str]:
    def digests(path):
        with tarfile.open(path) as tar:
            return {m.name: (m.mode, m.mtime, m.uid, m.linkname,
                             hashlib.sha256(tar.extractfile(m).read()).hexdigest()
                             if m.isfile() else "") for m in tar.getmembers()}
    left, right = digests(a), digests(b)
    return sorted(n for n in left.keys() | right.keys() if left.get(n) != right.get(n))


def test_two_clean_builds_give_identical_tarballs(builds):
    first, second = (tarball(p) for p in builds)
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (first, second)]
    assert digests[0] == digests[1], \
        f"the tarballs differ in: {differing_members(first, second)[:20]}"


def test_a_module_function_step_of_the_project_receives_the_release(builds):
    for project in builds:
        assert json.loads((project / "step.json").read_text()) == \
            {"name": "hello", "version": "0.1.0", "assembled": True}


def test_tarball_holds_this_release_only_normalised(builds):
    with tarfile.open(tarball(builds[0])) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names, key=lambda n: n.split("/"))
    for expected in ("bin/hello", "lib/hello/web.py", "python/bin/python3",
                     "releases/0.1.0/release.json", "releases/0.1.0/sbom.cdx.json",
                     "releases/0.1.0/build_config.json", "releases/CURRENT"):
        assert expected in names, expected
    assert "releases/COOKIE" not in names, "no secret in the artifact"
    assert not [n for n in names if n == "tmp" or n.startswith("tmp/")]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == \
        {(0, 0, "", "", EPOCH)}
    modes = {m.name: m.mode for m in members}
    assert modes["bin/hello"] == 0o755
    raw = tarball(builds[0]).read_bytes()
    assert raw[3] == 0 and raw[4:8] == b"\0\0\0\0", "gzip header: no name, mtime 0"


def test_installers_leave_no_build_paths_or_times_in_lib(builds):
    lib = builds[0] / "_build/prod/rel/hello/lib"
    assert not list(lib.glob("*.dist-info/direct_url.json"))
    assert not list(lib.glob("*.dist-info/uv_cache.json"))
    for record in lib.glob("*.dist-info/RECORD"):
        for line in record.read_text().splitlines():
            assert (lib / line.split(",")[0]).exists(), f"{record.parent.name}: {line}"


def test_the_extracted_tarball_runs_read_only_and_verifies(builds, tmp_path, nodes):
    """Extracted, it verifies; made read-only (`chmod -R a-w`), with RELEASE_TMP elsewhere, it
    serves, makes its cookie under RELEASE_TMP and answers rpc, and writes nothing into the
    release (checked on the tree too: root ignores the missing write bits)."""
    target = tmp_path / "opt" / "hello"
    target.mkdir(parents=True)
    subprocess.run(["tar", "-xzf", str(tarball(builds[0])), "-C", str(target)], check=True)
    verified = subprocess.run([str(target / "bin" / "hello"), "verify"], capture_output=True,
                              env=release_env(tmp_path, RELEASE_TMP=str(tmp_path / "rt")),
                              text=True)  # before chmod: verify compares modes too
    assert (verified.returncode, verified.stdout.split(":")[0]) == (0, "ok"), verified.stderr
    subprocess.run(["chmod", "-R", "a-w", str(target)], check=True)
    try:
        before = tree_digest(target)
        run_in_read_only_release(target, tmp_path, nodes)
        assert tree_digest(target) == before, "the release was written to"
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(target)], check=True)


def run_in_read_only_release(target: Path, tmp_path: Path, nodes) -> None:
    hello = str(target / "bin" / "hello")
    env = release_env(tmp_path, RELEASE_TMP=str(tmp_path / "rt"))
    files = json.loads((target / "releases/0.1.0/release.json").read_text())["files"]
    assert "releases/0.1.0/built_by_step.txt" in files  # written by a step after assemble
    migrated = subprocess.run([hello, "eval", "hello.release.migrate()"], env=env,
                              capture_output=True, text=True, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    node = nodes([hello, "start"], dict(env, PORT=str(port)), port).wait_ready()
    status, body, _ = get(node.url("/"))
    assert status == 200, body
    rpc = subprocess.run([hello, "rpc", "1 + 1"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert (rpc.returncode, rpc.stdout.strip()) == (0, "2"), rpc.stderr
    cookie = tmp_path / "rt" / "run" / "COOKIE"
    assert oct(cookie.stat().st_mode & 0o777) == "0o400"
    assert node.terminate() == 0


def test_sbom_is_valid_cyclonedx_listing_what_is_installed(builds):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    release = builds[0] / "_build/prod/rel/hello"
    text = (release / "releases/0.1.0/sbom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    listed = {c["name"].lower(): c for c in json.loads(text)["components"]}
    for name in ("flask", "sqlalchemy"):
        meta = next((release / "lib").glob(f"{name}-*.dist-info/METADATA"))
        installed = HeaderParser().parsestr(meta.read_text())["Version"]
        assert listed[name]["version"] == installed
        assert listed[name]["purl"] == f"pkg:pypi/{name}@{installed}"
        assert listed[name]["hashes"]
    assert listed["cpython"]["type"] == "platform"
    manifest = json.loads((release / "releases/0.1.0/release.json").read_text())
    assert listed["cpython"]["version"] == manifest["python"]["version"]
    assert "releases/0.1.0/sbom.cdx.json" in manifest["files"]


def test_a_secret_copied_into_the_build_config_fails_the_build(builds):
    project = builds[0]
    release = project / "_build/prod/rel/hello"
    before, tar_before = tree_digest(release), tarball(project).read_bytes()
    prod = project / "config" / "prod.py"
    original = prod.read_text()
    prod.write_text(original + "\nimport os\n"
                    "config('hello', copied=os.environ['SECRET_KEY_BASE'])\n")
    try:
        proc = twelve("release", "--overwrite", cwd=project, check=False,
                      env=dict(ENV, SECRET_KEY_BASE=SECRET))
    finally:
        prod.write_text(original)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert ("error: the value of the secret SECRET_KEY_BASE is in "
            "releases/0.1.0/build_config.json") in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert tree_digest(release) == before
    assert tarball(project).read_bytes() == tar_before
    assert [p.name for p in release.parent.iterdir()] == ["hello"]
    assert sorted(p.name for p in tarball(project).parent.iterdir()) == \
        [".hello.tar-index.json", "hello-0.1.0.tar.gz", "rel"]
