"""The digest commands as a user runs them: defaults from pyproject.toml, messages, exit codes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

PYPROJECT = """
[project]
name = "site"
version = "1.0"
dependencies = ["gunicorn"]

[tool.twelve]
app = "site.web:app"
static_dir = "public"
"""


def twelve(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "twelve", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})})


def project(tmp_path):
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (tmp_path / "public/css").mkdir(parents=True)
    (tmp_path / "public/css/app.css").write_text("body{color:#4b2c83}")
    return tmp_path


def test_digest_defaults_to_the_projects_static_dir(tmp_path):
    proc = twelve("digest", cwd=project(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("* digested 1 files in public (gzip")
    assert proc.stdout.rstrip().endswith("→ public/cache_manifest.json")
    latest = json.loads((tmp_path / "public/cache_manifest.json").read_text())["latest"]
    assert (tmp_path / "public" / latest["css/app.css"]).exists()


def test_source_date_epoch_is_the_recorded_mtime(tmp_path):
    project(tmp_path)
    proc = twelve("digest", cwd=tmp_path, env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert proc.returncode == 0, proc.stderr
    digests = json.loads((tmp_path / "public/cache_manifest.json").read_text())["digests"]
    assert [d["mtime"] for d in digests.values()] == [1_700_000_000 + 62_167_219_200]
    bad = twelve("digest", cwd=tmp_path, env={"SOURCE_DATE_EPOCH": "yesterday"})
    assert bad.returncode == 1
    assert "SOURCE_DATE_EPOCH='yesterday' is not a Unix timestamp" in bad.stderr


def test_digest_dir_output_and_no_compile(tmp_path):
    project(tmp_path)
    proc = twelve("digest", "public", "-o", "out", "--no-compile", "-j", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "(not compressed)" in proc.stdout
    assert (tmp_path / "out/css/app.css").exists() and not list(tmp_path.rglob("*.gz"))


def test_clean_and_clean_all(tmp_path):
    project(tmp_path)
    twelve("digest", cwd=tmp_path, env={"SOURCE_DATE_EPOCH": "1700000000"})  # long ago
    (tmp_path / "public/css/app.css").write_text("body{color:red}")
    twelve("digest", cwd=tmp_path)
    kept = twelve("digest.clean", cwd=tmp_path)
    assert (kept.returncode, kept.stdout) == (0, "* nothing to clean in public\n")
    gone = twelve("digest.clean", "--keep", "0", "--age", "0", cwd=tmp_path)
    assert gone.returncode == 0
    assert gone.stdout.startswith("* removed 1 old digested versions (")
    everything = twelve("digest.clean", "public", "--all", cwd=tmp_path)
    assert everything.returncode == 0 and "and the manifest from public" in everything.stdout
    assert sorted(p.name for p in (tmp_path / "public").rglob("*") if p.is_file()) == ["app.css"]


def test_mistakes_have_one_message_and_exit_code(tmp_path):
    missing = twelve("digest", "nope", cwd=tmp_path)
    assert missing.returncode == 1
    assert "error: the static directory nope does not exist" in missing.stderr
    assert "twelve run assets.deploy" in missing.stderr and "Traceback" not in missing.stderr
    no_project = twelve("digest", cwd=tmp_path)
    assert no_project.returncode == 2 and "no DIR given and no pyproject.toml" in no_project.stderr
    assert "usage: twelve digest DIR" in no_project.stderr
    for args, message in ((("digest.clean", "x", "--keep", "-1"), "--keep must be 0 or more"),
                          (("digest.clean", "x", "--age", "-5"), "--age must be 0 or more"),
                          (("digest", "x", "-j", "0"), "--jobs must be 1 or more")):
        proc = twelve(*args, cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    not_int = twelve("digest.clean", "x", "--keep", "many", cwd=tmp_path)
    assert not_int.returncode == 2 and "invalid int value" in not_int.stderr
    clean_missing = twelve("digest.clean", "nope", cwd=tmp_path)
    assert clean_missing.returncode == 1 and "does not exist" in clean_missing.stderr


def test_help_lists_the_digest_commands(tmp_path):
    proc = twelve("--help", cwd=tmp_path)
    assert "digest" in proc.stdout and "digest.clean" in proc.stdout
