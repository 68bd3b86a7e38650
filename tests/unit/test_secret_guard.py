"""The secret guard: a value of an env.secret set at build time must not be in the release."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from twelve.builder import assemble, secret_guard
from twelve.builder.release import Release
from twelve.errors import BuildError

RUNTIME_PY = """\
from twelve import config, env
config("app", key=env.secret("SECRET_KEY_BASE", min_length=64),
       token=env.secret("API_TOKEN", default=None),
       pin=env.secret("PIN", default=None),
       url=env.url("DATABASE_URL", default="sqlite:///x.db"))
"""
SECRET = "s3cr3t-" + "q" * 70
TOKEN = 'tok"en\\with-json-escapes'


def staging_release(tmp_path: Path, runtime_py: str = RUNTIME_PY,
                    build_config: dict | None = None) -> Release:
    staging = tmp_path / "staging"
    vdir = staging / "releases" / "1.0"
    vdir.mkdir(parents=True)
    (vdir / "runtime.py").write_text(runtime_py)
    build_config = build_config or {"app": {"greeting": "hi"}}
    (vdir / "build_config.json").write_text(json.dumps(build_config))
    assemble.copy_runtime(staging / "lib")
    (staging / "lib" / "app.py").write_text("print('hello')\n")
    return Release(project=None, name="app", version="1.0", env="prod",
                   root=tmp_path / "rel" / "app", build_config=build_config, staging=staging)


def check(release: Release, environ: dict) -> list[str]:
    logged: list[str] = []
    secret_guard.check_release(release, sys.executable, environ, logged.append)
    return logged


def test_runtime_py_declares_the_secrets(tmp_path):
    release = staging_release(tmp_path)
    names = secret_guard.declared_secrets(release, sys.executable,
                                          release.version_dir / "runtime.py", {})
    assert names == ["API_TOKEN", "PIN", "SECRET_KEY_BASE"]


def test_a_clean_release_passes(tmp_path):
    assert check(staging_release(tmp_path), {"SECRET_KEY_BASE": SECRET}) == []


def test_a_copied_secret_fails_naming_variable_and_file_never_the_value(tmp_path):
    release = staging_release(tmp_path, build_config={"app": {"copied": SECRET}})
    with pytest.raises(BuildError) as info:
        check(release, {"SECRET_KEY_BASE": SECRET})
    error = info.value
    assert error.message == ("the value of the secret SECRET_KEY_BASE is in "
                             "releases/1.0/build_config.json")
    assert "env.secret" in error.hint and "previous release is unchanged" in error.hint
    assert SECRET not in error.render()


def test_every_leak_is_listed_json_escaped_values_too(tmp_path):
    release = staging_release(tmp_path, build_config={"app": {"copied": TOKEN}})
    (release.staging / "lib" / "app.py").write_text(f"KEY = {SECRET!r}\n")
    with pytest.raises(BuildError) as info:
        check(release, {"SECRET_KEY_BASE": SECRET, "API_TOKEN": TOKEN})
    text = info.value.render()
    assert "values of secrets are in 2 files of the release:" in text
    assert "API_TOKEN  in releases/1.0/build_config.json" in text
    assert "SECRET_KEY_BASE  in lib/app.py" in text
    assert SECRET not in text and TOKEN not in text


def test_short_and_unset_values_are_not_searched(tmp_path):
    release = staging_release(tmp_path, build_config={"app": {"pin": "1234"}})
    assert check(release, {"PIN": "1234", "SECRET_KEY_BASE": ""}) == []


def test_other_versions_and_tmp_are_not_this_builds_files(tmp_path):
    release = staging_release(tmp_path)
    for rel in ("releases/0.9/build_config.json", "tmp/log"):
        path = release.staging / rel
        path.parent.mkdir(parents=True)
        path.write_text(SECRET)
    assert check(release, {"SECRET_KEY_BASE": SECRET}) == []


def test_a_runtime_py_that_cannot_be_evaluated_only_warns(tmp_path):
    release = staging_release(tmp_path, runtime_py="import no_such_module_4711\n")
    logged = check(release, {"SECRET_KEY_BASE": SECRET})
    assert len(logged) == 1 and "could not evaluate config/runtime.py" in logged[0]
    assert "no_such_module_4711" in logged[0]


def test_runtime_py_may_import_the_app_from_lib(tmp_path):
    release = staging_release(tmp_path, runtime_py="import app\n" + RUNTIME_PY)
    (release.staging / "lib" / "app.py").write_text("NAME = 'app'\n")
    assert check(release, {}) == []


def test_secret_looking_build_config_keys_warn(tmp_path):
    config = {"app": {"api_key": "x", "db": {"PASSWORD_FILE": "/x", "nested_token": 1},
                      "secret_key_base": "y", "greeting": "hi"}}
    assert secret_guard.secret_looking_keys(config) == [
        "app.api_key", "app.db.PASSWORD_FILE", "app.db.nested_token", "app.secret_key_base"]
    logged = check(staging_release(tmp_path, build_config=config), {})
    assert logged[0].startswith("  warning: build config key app.api_key looks like a secret")


def test_literal_secret_names_are_read_without_running_runtime_py(tmp_path):
    from twelve.builder.secret_guard import literal_secret_names
    runtime_py = tmp_path / "runtime.py"
    runtime_py.write_text('from twelve import env\nraise SystemExit("never run")\n'
                          'a = env.secret("SECRET_KEY_BASE", min_length=64)\n'
                          'b = env.str("PORT")\nc = env.secret("API_TOKEN")\n')
    assert literal_secret_names(runtime_py) == {"SECRET_KEY_BASE", "API_TOKEN"}
    runtime_py.write_text('from twelve import env\nname = "X"\nenv.secret(name)\n')
    assert literal_secret_names(runtime_py) is None, "a computed name needs evaluating"
    runtime_py.write_text('import hello.settings\nfrom twelve import env\nenv.secret("A")\n')
    assert literal_secret_names(runtime_py) is None, "an imported module may read secrets"
    runtime_py.write_text('from twelve import env\nread = env.secret\nread("A")\n')
    assert literal_secret_names(runtime_py) is None
