"""`--env-file`: a release tried locally with the EnvironmentFile its server uses. Values reach
the app (a daemon's node and a restart read the file too), the environment wins, and no value is
ever echoed."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conftest import Release, get, wait_http

pytestmark = pytest.mark.slow

SECRET = "env-file-" + "Qx7" * 25  # a SECRET_KEY_BASE only the file holds


def env_file(path: Path, greeting: str) -> Path:
    path.write_text(f"""\
# hello.env, as `twelve gen.systemd` would have the server's
; comments of both kinds
export GREETING="{greeting}"
SECRET_KEY_BASE='{SECRET}'
PORT=1
""")
    return path


@pytest.fixture
def rel(hello_release, tmp_path):
    release = Release(hello_release, tmp_path)
    del release.env["SECRET_KEY_BASE"]  # from the file only
    yield release
    release.cleanup()


def rpc(rel: Release, code: str) -> str:
    proc = rel("rpc", code, check=True)
    return proc.stdout.strip()


def test_values_reach_the_node_and_a_restart_reads_the_file_anew(rel, tmp_path):
    path = env_file(tmp_path / "hello.env", "hello world")
    proc = rel("eval", "--env-file", str(path), "hello.release.migrate()")
    assert proc.returncode == 0, proc.stderr
    proc = rel("daemon", "--env-file", str(path))
    assert proc.returncode == 0, proc.stderr
    rel.pids.add(int(rel("pid", check=True).stdout))
    wait_http(rel.url("/"))  # PORT from the environment won over the file's 1
    assert get(rel.url("/"))[0] == 200
    assert rpc(rel, "import os; os.environ['GREETING']") == "'hello world'"
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    assert rpc(rel, "import hashlib, twelve; hashlib.sha256(twelve.get_env('hello', "
                    "'secret_key_base').encode()).hexdigest()") == repr(digest)
    env_file(path, "edited")
    rel("restart", check=True)
    assert rpc(rel, "import os; os.environ['GREETING']") == "'edited'"
    rel("stop", check=True)
    logs = "".join(p.read_text() for p in (Path(rel.env["RELEASE_TMP"]) / "log").glob("*"))
    assert SECRET not in logs + proc.stdout + proc.stderr


def test_env_says_where_each_value_comes_from(rel, tmp_path):
    path = env_file(tmp_path / "hello.env", "hi")
    proc = rel("env", f"--env-file={path}", check=True)
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[1:]}
    assert rows["SECRET_KEY_BASE"][-3:] == ["yes", "env", "file"]
    assert rows["PORT"][-1] == "environment"
    assert rows["HOST"][-1] == "environment"
    assert "config_env(): prod" in proc.stdout
    assert f"env file: {path}" in proc.stdout
    assert SECRET not in proc.stdout + proc.stderr


def test_a_bad_env_file_is_a_configuration_error(rel, tmp_path):
    path = tmp_path / "bad.env"
    path.write_text(f"SECRET_KEY_BASE={SECRET}\n{SECRET}\n")
    proc = rel("start", "--env-file", str(path))
    assert proc.returncode == 78
    assert f"invalid env file {path}: 1 problem" in proc.stderr
    assert "line 2: expected NAME=VALUE" in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    missing = rel("check", "--env-file")
    assert missing.returncode == 2 and "--env-file needs a file" in missing.stderr
