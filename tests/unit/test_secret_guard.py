"""The secret guard: a value of an env.secret set at build time must not be in the release."""
from __future__ import annotations

import json
import sys
from dataclasses import replace
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
    """Both checks, as the build runs them: the build config first, then the release."""
    logged: list[str] = []
    secret_guard.check_build_config(release, logged.append)
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


# --- literal secrets in the build config (issue 12) ------------------------------------------

GENERATED = "kP3v9QzL2mX7wR4tY8uN1bJ6cH5dF0gSaE2qW9rT4yU7iO3pA6sD1fG8hJ5kL0zX"  # gen.secret-like
SHORT_RANDOM = "q8ZxT2mLp9RvW4kNc7Hs"  # 20 characters


@pytest.mark.parametrize("key, value, reason", [
    ("secret_key_base", GENERATED, secret_guard.BY_NAME),
    ("SECRET_KEY", "django-insecure-k2#x9!f@3v&j7q)w0+e^r5t%y8u*i1o(p4a6s_d$f=g",
     secret_guard.BY_NAME),
    ("db_password", "hunter2hunter2", secret_guard.BY_NAME),
    ("smtp_password", "correct horse battery staple", secret_guard.BY_NAME),
    ("api_token", "tok-1234567890", secret_guard.BY_NAME),
    ("stripe_apikey", "sk_live_51H8bZ2CjkX9YqLmNpQr", secret_guard.BY_NAME),
    ("aws_credentials", "AKIAIOSFODNN7-wJalrXUtnFEMI", secret_guard.BY_NAME),
    ("database_url", "postgresql://app:Xk29-vLq81z@db.internal:5432/app", secret_guard.BY_URL),
    ("sentry_dsn", "https://user:pa%24%24word-1234@sentry.io/42", secret_guard.BY_URL),
    ("signing", GENERATED, secret_guard.BY_ENTROPY),
    ("upstream", SHORT_RANDOM, secret_guard.BY_ENTROPY),
    ("aws_secret_access", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzZ09q", secret_guard.BY_NAME),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
     secret_guard.BY_ENTROPY),
])
def test_a_literal_secret_is_found(key, value, reason):
    assert secret_guard.looks_like_secret(key, value) == reason


@pytest.mark.parametrize("key, value", [
    ("env", "prod"), ("greeting", "Hello, world! Welcome to our site."),
    ("database_url", "sqlite:////var/lib/app/app.db"),
    ("database_url", "postgresql://app@db.internal:5432/app"),
    ("database_url", "postgres://postgres:postgres@localhost/app"),  # user = password
    ("database_url", "postgresql://user:password@localhost:5432/app"),
    ("broker", "amqp://guest:guest@localhost//"),
    ("static_root", "/var/lib/app/static/assets"), ("templates", "./templates/emails"),
    ("secret_key_base", ""), ("secret_key_base", "dev"), ("api_key", "x"),
    ("secret_key_base", "<64 random characters>"), ("secret_key_base", "${SECRET_KEY_BASE}"),
    ("secret_key_base", "changeme-please"), ("db_password", "********"),
    ("api_token", "your-token-here"), ("secret_key", "not-a-real-one-example"),
    ("password_file", "/run/secrets/db"), ("csrf_token_name", "csrftoken-v2"),
    ("token_header", "Authorization"), ("token_url", "https://auth.example.com/token"),
    ("secret_key_env", "SECRET_KEY_BASE"),
    ("PASSWORD_HASHERS", "django.contrib.auth.hashers.PBKDF2PasswordHasher"),
    ("revision", "1eb90a9f3c2d4e5f6a7b8c9d0e1f2a3b4c5d6e7f"),  # hex: one case only
    ("instance", "123e4567-e89b-12d3-a456-426614174000"),
    ("settings", "hello_django.settings.production"), ("app", "hello.web:create_app()"),
    ("cache_prefix", "my-application-cache-prefix-v2"),
    ("user_agent", "Mozilla/5.0 (X11; Linux x86_64)"),
    ("access_key_id", "AKIAIOSFODNN7EXAMPLE"),
])
def test_ordinary_values_are_no_secrets(key, value):
    assert secret_guard.looks_like_secret(key, value) is None


def test_random_strings_of_twenty_characters_and_more_pass_the_entropy_bar():
    import random
    import string

    rng = random.Random(12)
    for length in (20, 32, 64, 100):
        for _ in range(200):
            value = "".join(rng.choices(string.ascii_letters + string.digits + "-_", k=length))
            if secret_guard._random_looking(value) or not (
                    any(c.isdigit() for c in value) and any(c.islower() for c in value)
                    and any(c.isupper() for c in value)):
                continue
            pytest.fail(f"a random {length}-character string passed as no secret: {value}")


def test_literal_secrets_are_found_at_any_depth_and_in_lists():
    config = {"app": {"greeting": "hi", "secret_key_base": GENERATED,
                      "db": {"url": "postgresql://app:Xk29-vLq81z@db/app", "pool": 5},
                      "fallback_keys": ["short", GENERATED], "debug": False}}
    assert secret_guard.literal_secrets(config) == [
        ("app.secret_key_base", secret_guard.BY_NAME), ("app.db.url", secret_guard.BY_URL),
        ("app.fallback_keys", secret_guard.BY_ENTROPY)]


def test_a_literal_secret_fails_naming_file_and_key_never_the_value(tmp_path):
    release = staging_release(tmp_path, build_config={"app": {"secret_key_base": GENERATED}})
    with pytest.raises(BuildError) as info:
        check(release, {})
    error = info.value
    assert error.message == ("releases/1.0/build_config.json sets app.secret_key_base to a "
                             "literal secret (named like a secret); build_config.json would "
                             "ship it in clear text")
    assert 'config("app", secret_key_base=env.secret("SECRET_KEY_BASE"))' in error.hint
    assert 'secret_guard_allow = ["app.secret_key_base"]' in error.hint
    assert "previous release is unchanged" in error.hint
    assert GENERATED not in error.render()


def test_the_file_that_sets_the_key_is_named(tmp_path):
    from types import SimpleNamespace

    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "config.py").write_text('config("app", greeting="hi", api_key="x")\n')
    (config_dir / "prod.py").write_text(f'config("app", **{{"api_key": {GENERATED!r}}})\n'
                                        f'config("app", signing={SHORT_RANDOM!r})\n')
    release = staging_release(tmp_path, build_config={"app": {
        "api_key": GENERATED, "signing": SHORT_RANDOM, "other": "s3cr3tValue9Xq2Lm8Zp4Tn"}})
    release = replace(release, project=SimpleNamespace(
        root=tmp_path, config_dir=config_dir, secret_guard_allow=()))
    with pytest.raises(BuildError) as info:
        check(release, {})
    assert info.value.message == (
        "3 build config keys are set to literal secrets; build_config.json would ship them in "
        "clear text:\n"
        "  app.api_key  (config/prod.py: named like a secret)\n"
        "  app.signing  (config/prod.py: a long random-looking string)\n"
        "  app.other  (releases/1.0/build_config.json: a long random-looking string)")
    assert all(v not in info.value.render() for v in (GENERATED, SHORT_RANDOM))


def test_an_allowed_key_passes_and_is_not_warned_about(tmp_path):
    from types import SimpleNamespace

    release = staging_release(tmp_path, build_config={"app": {"secret_key_base": GENERATED,
                                                               "api_key": "x"}})
    release = replace(release, project=SimpleNamespace(
        root=tmp_path, config_dir=tmp_path / "config",
        secret_guard_allow=("app.secret_key_base",)))
    assert check(release, {}) == [secret_guard.KEY_WARNING.format(key="app.api_key")]
    release = replace(release, project=SimpleNamespace(
        root=tmp_path, config_dir=tmp_path / "config", secret_guard_allow=("app.secret",)))
    with pytest.raises(BuildError):
        check(release, {})  # exactly the key: no prefix, no pattern


def test_secret_guard_allow_is_a_list_of_dotted_keys(tmp_path):
    from twelve.errors import ProjectError
    from twelve.project import load_project

    pyproject = ('[project]\nname = "app"\nversion = "1.0"\ndependencies = ["gunicorn"]\n'
                 '[tool.twelve]\napp = "app.web:app"\nsecret_guard_allow = {allow}\n')
    (tmp_path / "pyproject.toml").write_text(pyproject.format(allow='["app.signing_salt"]'))
    assert load_project(tmp_path).secret_guard_allow == ("app.signing_salt",)
    (tmp_path / "pyproject.toml").write_text(pyproject.format(allow='["signing_salt"]'))
    with pytest.raises(ProjectError, match=r"tool.twelve.secret_guard_allow: 'signing_salt' "
                                           r"is not a dotted build config key"):
        load_project(tmp_path)
