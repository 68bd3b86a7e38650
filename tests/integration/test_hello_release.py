"""The example app's prod release, end to end: build, version, config errors, eval, start."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SECRET, free_port, get, release_env, twelve

pytestmark = pytest.mark.slow


def run(release: Path, *args: str, env: dict, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(release / "bin" / "hello"), *args], env=env, text=True,
                          capture_output=True, timeout=60, **kw)


def test_version_prints_name_and_version(hello_release, tmp_path):
    proc = run(hello_release, "version", env={"PATH": "/usr/bin:/bin"})
    assert (proc.returncode, proc.stdout) == (0, "hello 0.1.0\n")


def test_release_layout_and_manifest(hello_release):
    manifest = json.loads((hello_release / "releases/0.1.0/release.json").read_text())
    assert (manifest["name"], manifest["version"], manifest["env"]) == ("hello", "0.1.0", "prod")
    assert manifest["python"]["bundled"] is True
    assert (hello_release / manifest["python"]["executable"]).is_file()
    packages = {p["name"].lower(): p for p in manifest["packages"]}
    assert {"flask", "sqlalchemy", "gunicorn", "hello"} <= packages.keys()
    assert all(h.startswith("sha256:") for p in packages.values() for h in p["hashes"])
    assert packages["flask"]["hashes"], "locked packages carry their lock hashes"
    assert "lib/hello/web.py" in manifest["files"]
    assert not (hello_release / "releases/COOKIE").exists(), "no secret in the release"
    # The app is installed from its wheel: nothing points back into the source tree.
    assert not list((hello_release / "lib").glob("*.pth"))
    assert not list((hello_release / "lib").glob("_hello*.pth"))


def test_pyc_are_hash_based(hello_release):
    pyc = next((hello_release / "lib/hello/__pycache__").glob("web.*.pyc"))
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags & 0b1, "hash-based .pyc (PEP 552), not timestamp-based"


def test_config_errors_are_reported_together_with_exit_78(hello_release, tmp_path):
    env = release_env(tmp_path, PORT="abc")
    del env["SECRET_KEY_BASE"]
    proc = run(hello_release, "start", env=env)
    assert proc.returncode == 78
    assert "PORT" in proc.stderr and "not an integer" in proc.stderr
    assert "SECRET_KEY_BASE" in proc.stderr and "missing" in proc.stderr
    assert "gen.secret" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_short_secret_is_refused_and_never_shown(hello_release, tmp_path):
    short = "tooshort-but-unique-value-4711"
    proc = run(hello_release, "start", env=release_env(tmp_path, SECRET_KEY_BASE=short))
    assert proc.returncode == 78
    assert "too short (needs 64, got 30)" in proc.stderr
    assert short not in proc.stdout + proc.stderr
    listing = run(hello_release, "env", env=release_env(tmp_path, SECRET_KEY_BASE=short))
    assert listing.returncode == 0 and short not in listing.stdout + listing.stderr


def test_eval_runs_code_without_starting_the_server(hello_release, tmp_path):
    code = ("import sys; print(sys.argv[1:]); "
            "print(sorted(m for m in ('gunicorn', 'hello.web') if m in sys.modules))")
    proc = run(hello_release, "eval", code, "one", "two words", env=release_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["['one', 'two words']", "[]"]


def test_eval_imports_named_modules_and_reports_exceptions(hello_release, tmp_path):
    env = release_env(tmp_path)
    proc = run(hello_release, "eval", "hello.release.migrate()", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "migrated sqlite:///" in proc.stdout
    assert (tmp_path / "state" / "hello.db").is_file()
    failing = run(hello_release, "eval", "raise ValueError('boom')", env=env)
    assert failing.returncode == 1
    assert "ValueError: boom" in failing.stderr
    assert "twelve/runtime" not in failing.stderr, "only the user's frames are shown"


def test_env_lists_declared_variables(hello_release, tmp_path):
    proc = run(hello_release, "env", env=release_env(tmp_path, PORT="4321"))
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()[1:]}
    assert {"DATABASE_URL", "SECRET_KEY_BASE", "PORT", "HOST", "WEB_CONCURRENCY"} <= lines.keys()
    assert SECRET not in proc.stdout
    example = run(hello_release, "env", "--example", env=release_env(tmp_path))
    assert "SECRET_KEY_BASE=" in example.stdout and SECRET not in example.stdout


def test_check_imports_the_app_without_serving(hello_release, tmp_path):
    proc = run(hello_release, "check", env=release_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "hello.web:create_app() (WSGI)" in proc.stdout and "gunicorn" in proc.stdout


def test_usage_and_unknown_commands(hello_release, tmp_path):
    env = release_env(tmp_path)
    bare = run(hello_release, env=env)
    assert bare.returncode == 2
    for command in ("start", "daemon", "eval", "rpc", "remote", "restart", "stop", "pid",
                    "version", "env", "check", "start_repl", "daemon_repl"):
        assert f"  {command} " in bare.stdout or f"  {command}\n" in bare.stdout, command
    unknown = run(hello_release, "frobnicate", env=env)
    assert unknown.returncode == 2 and "unknown command 'frobnicate'" in unknown.stderr
    not_running = run(hello_release, "stop", env=dict(env, RELEASE_TMP=str(tmp_path / "rt")))
    assert not_running.returncode == 3 and "hello is not running" in not_running.stderr


def test_launcher_works_through_symlinks(hello_release, tmp_path):
    absolute = tmp_path / "abs-hello"
    absolute.symlink_to(hello_release / "bin" / "hello")
    (tmp_path / "sub").mkdir()
    relative = tmp_path / "sub" / "rel-hello"
    relative.symlink_to(os.path.relpath(hello_release / "bin" / "hello", relative.parent))
    chained = tmp_path / "chained"
    chained.symlink_to(relative)
    for link in (absolute, relative, chained):
        proc = subprocess.run([str(link), "eval", "import os; print(os.environ['RELEASE_ROOT'])"],
                              env=release_env(tmp_path), capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == str(hello_release.resolve())


def test_start_serves_and_sigterm_exits_zero(hello_release, tmp_path, nodes):
    port = free_port()
    env = release_env(tmp_path, PORT=str(port), HOST="127.0.0.1")
    assert run(hello_release, "eval", "hello.release.migrate()", env=env).returncode == 0
    node = nodes([str(hello_release / "bin" / "hello"), "start"], env, port).wait_ready()
    status, body, _ = get(node.url("/"))
    assert status == 200 and b"from a twelve release" in body
    status, _, headers = get(node.url("/static/css/app.css"))
    assert status == 200 and headers["Content-Type"].startswith("text/css")
    counts = [json.loads(get(node.url("/visits"))[1])["visits"] for _ in range(3)]
    assert counts == [counts[0], counts[0] + 1, counts[0] + 2]
    assert node.terminate() == 0
    out = node.output()
    assert "Listening at: http://127.0.0.1:" in out, "logs go to stdout"


def test_the_node_is_the_launched_process(hello_release, tmp_path, nodes):
    """bin/hello execs the runtime: no shell stays in between to swallow signals."""
    port = free_port()
    env = release_env(tmp_path, PORT=str(port), HOST="127.0.0.1")
    node = nodes([str(hello_release / "bin" / "hello"), "start"], env, port).wait_ready()
    cmdline = Path(f"/proc/{node.proc.pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[0].endswith(b"python/bin/python3.%d" % sys.version_info[1])
    assert b"-E" in cmdline and b"-s" in cmdline
    assert node.terminate() == 0


def test_overwrite_needs_consent(hello_project, hello_release):
    manifest = (hello_release / "releases/0.1.0/release.json").read_bytes()
    refused = twelve("release", cwd=hello_project, env={"TWELVE_ENV": "prod"}, check=False)
    assert refused.returncode == 1
    assert "already exists" in refused.stderr and "--overwrite" in refused.stderr
    assert (hello_release / "releases/0.1.0/release.json").read_bytes() == manifest


def test_the_dependency_cache_is_left_as_recorded(hello_release):
    """Releases link their locked packages out of the cache; no build step may write through
    such a link, so every cached file still has the hash recorded when it was made."""
    import hashlib
    from twelve.builder.pipeline import cache_root

    linked = (hello_release / "lib" / "flask" / "app.pyc").stat()
    assert linked.st_nlink >= 2, "the release links its packages out of the cache"
    for entry in (cache_root() / "deps").iterdir():
        if entry.name.startswith("."):
            continue
        recorded = json.loads((entry / "files.json").read_text())
        for rel, digest in recorded.items():
            assert hashlib.sha256((entry / rel).read_bytes()).hexdigest() == digest, rel
