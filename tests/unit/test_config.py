"""The config store and its evaluation at build, boot and in development."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from twelve.runtime.config import store as config_module
from twelve.runtime.config import env as env_module
from twelve.runtime.config.server import default_max_workers
from twelve.runtime.config.store import (ConfigError, config, config_env, describe_environment,
                                   evaluate_build_config, evaluate_runtime_config,
                                   format_env_example, format_environment, get_env)

SRC = Path(__file__).resolve().parents[2] / "src"


pytestmark = pytest.mark.usefixtures("no_active_config")


def write(path: Path, code: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("from twelve import config, config_env, env, get_env\n"
                    + textwrap.dedent(code))
    return path


# -- the store ----------------------------------------------------------------------------------

def test_config_deep_merges_dicts_and_replaces_everything_else(tmp_path):
    write(tmp_path / "config.py", """
        config("web", db={"host": "a", "pool": {"size": 1, "timeout": 5}}, hosts=["x"], n=1)
        config("web", db={"pool": {"size": 10}}, hosts=["y"])
        config("web", n={"now": "a dict"})
        config("worker", queues=["default"])
    """)
    assert evaluate_build_config(tmp_path, "prod", {}) == {
        "web": {"db": {"host": "a", "pool": {"size": 10, "timeout": 5}}, "hosts": ["y"],
                "n": {"now": "a dict"}},
        "worker": {"queues": ["default"]},
    }


def test_config_copies_the_dicts_it_is_given(tmp_path):
    write(tmp_path / "config.py", """
        settings = {"a": 1}
        config("web", settings=settings)
        settings["a"] = 2
    """)
    assert evaluate_build_config(tmp_path, "prod", {}) == {"web": {"settings": {"a": 1}}}


def test_config_needs_an_app_name(tmp_path):
    write(tmp_path / "config.py", "config(debug=True)\n")
    with pytest.raises(ConfigError, match="config.py:2: TypeError"):
        evaluate_build_config(tmp_path, "prod", {})


# -- build time ---------------------------------------------------------------------------------

def test_build_runs_config_then_the_env_file(tmp_path):
    write(tmp_path / "config.py", 'config("web", order=["config"], debug=True, env=config_env())\n')
    write(tmp_path / "prod.py", """
        config("web", order=get_env("web", "order") + ["prod"], debug=False)
    """)
    write(tmp_path / "dev.py", 'config("web", order=["dev"])\n')
    assert evaluate_build_config(tmp_path, "prod", {}) == \
        {"web": {"order": ["config", "prod"], "debug": False, "env": "prod"}}
    assert evaluate_build_config(tmp_path, "dev", {})["web"]["order"] == ["dev"]


def test_build_without_config_files_is_empty(tmp_path):
    assert evaluate_build_config(tmp_path / "config", "prod", {}) == {}


def test_build_reads_the_given_environment_only(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_HOST", "from-os-environ")
    write(tmp_path / "config.py", 'config("web", asset_host=env.str("ASSET_HOST"))\n')
    assert evaluate_build_config(tmp_path, "prod", {"ASSET_HOST": "cdn"}) == \
        {"web": {"asset_host": "cdn"}}


def test_build_result_is_plain_json(tmp_path):
    write(tmp_path / "config.py", 'config("web", hosts=("a", "b"), ratio=0.5, none=None)\n')
    result = evaluate_build_config(tmp_path, "prod", {})
    assert result == {"web": {"hosts": ["a", "b"], "ratio": 0.5, "none": None}}
    assert json.loads(json.dumps(result)) == result


def test_a_non_json_build_value_names_app_key_and_file(tmp_path):
    write(tmp_path / "config.py", 'config("web", debug=True)\n')
    write(tmp_path / "prod.py", """
        import datetime
        config("web", cache={"ttl": datetime.timedelta(seconds=5)})
    """)
    with pytest.raises(ConfigError) as caught:
        evaluate_build_config(tmp_path, "prod", {})
    text = caught.value.render()
    assert f"{tmp_path.name}/prod.py: web.cache.ttl is a datetime.timedelta" in text
    assert "config/runtime.py" in text  # where to compute such values instead


def test_a_non_string_key_is_not_json(tmp_path):
    write(tmp_path / "config.py", 'config("web", codes={404: "missing"})\n')
    with pytest.raises(ConfigError, match="web.codes is a dict with the non-string key 404"):
        evaluate_build_config(tmp_path, "prod", {})


def test_an_env_name_cannot_be_a_path(tmp_path):
    with pytest.raises(ConfigError, match="invalid environment name '../x'"):
        evaluate_build_config(tmp_path, "../x", {})


# -- exceptions in config files -----------------------------------------------------------------

def test_an_exception_names_file_and_line(tmp_path):
    write(tmp_path / "config" / "prod.py", """
        config("web", debug=False)
        limits = {}
        config("web", limit=limits["rate"])
    """)
    with pytest.raises(ConfigError) as caught:
        evaluate_build_config(tmp_path / "config", "prod", {})
    err = caught.value
    assert str(err) == "config/prod.py:5: KeyError: 'rate'"
    assert err.render() == ("error: config/prod.py:5: KeyError: 'rate'\n\n"
                            "  5 | config(\"web\", limit=limits[\"rate\"])")
    assert err.exit_code == 78 and "Traceback" not in err.render()


def test_an_exception_in_a_helper_names_the_config_line(tmp_path, monkeypatch):
    (tmp_path / "helper_for_config.py").write_text("def boom():\n    raise RuntimeError('no')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    write(tmp_path / "runtime.py", "import helper_for_config\n\nhelper_for_config.boom()\n")
    with pytest.raises(ConfigError, match=r"^releases/1/runtime.py:4: RuntimeError: no$"):
        evaluate_runtime_config(tmp_path / "runtime.py", {}, "prod", {},
                                source="releases/1/runtime.py")


def test_a_syntax_error_names_file_and_line(tmp_path):
    write(tmp_path / "runtime.py", "config('web',\n")
    with pytest.raises(ConfigError, match=r"^config/runtime.py:2: SyntaxError: "):
        evaluate_runtime_config(tmp_path / "runtime.py", {}, "prod", {})


def test_an_exception_after_problems_reports_the_problems(tmp_path):
    write(tmp_path / "runtime.py", """
        url = env.url("DATABASE_URL")
        config("web", db_host=url.split("@")[1])  # AttributeError on None
    """)
    with pytest.raises(ConfigError) as caught:
        evaluate_runtime_config(tmp_path / "runtime.py", {}, "prod", {})
    assert [p.name for p in caught.value.problems] == ["DATABASE_URL"]
    assert "AttributeError" not in caught.value.render()


# -- runtime ------------------------------------------------------------------------------------

def test_runtime_overrides_build_and_untouched_values_survive(tmp_path):
    build = {"web": {"debug": False, "db": {"host": "build", "pool": 5}}, "mail": {"from": "x"}}
    write(tmp_path / "runtime.py", """
        config("web", db={"host": env.str("DB_HOST")}, secret=env.secret("KEY"))
    """)
    result = evaluate_runtime_config(tmp_path / "runtime.py", build, "prod",
                                     {"DB_HOST": "db.internal", "KEY": "k"})
    assert result == {"web": {"debug": False, "db": {"host": "db.internal", "pool": 5},
                              "secret": "k"}, "mail": {"from": "x"}}
    assert build["web"]["db"]["host"] == "build"  # the build config itself is not changed


def test_runtime_installs_its_result_for_get_env(tmp_path):
    write(tmp_path / "runtime.py", 'config("web", port=get_env("web", "port") + 1)\n')
    evaluate_runtime_config(tmp_path / "runtime.py", {"web": {"port": 1}}, "staging", {})
    assert get_env("web", "port") == 2
    assert get_env("web", "missing", "d") == "d"
    assert get_env("nope") is None and get_env("nope", default={}) == {}
    assert config_env() == "staging"
    whole = get_env("web")
    whole["port"] = 99
    assert get_env("web", "port") == 2  # a copy
    config("web", extra=True)  # app code may still add settings
    assert get_env("web") == {"port": 2, "extra": True}


def test_runtime_without_a_file(tmp_path):
    assert evaluate_runtime_config(None, {"a": {"b": 1}}, "prod", {}) == {"a": {"b": 1}}
    assert evaluate_runtime_config(tmp_path / "absent.py", {}, "prod", {}) == {}


def test_config_env_inside_runtime(tmp_path):
    write(tmp_path / "runtime.py", 'config("web", env=config_env())\n')
    assert evaluate_runtime_config(tmp_path / "runtime.py", {}, "prod", {}) == \
        {"web": {"env": "prod"}}


def test_a_failed_runtime_evaluation_installs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so a get_env fallback would find no config/ either
    write(tmp_path / "runtime.py", 'config("web", key=env.str("KEY"))\n')
    with pytest.raises(ConfigError):
        evaluate_runtime_config(tmp_path / "runtime.py", {}, "prod", {})
    assert config_module._installed is None and config_module._current is None
    assert env_module._recorder is None


# -- server settings ----------------------------------------------------------------------------

def test_server_settings_have_12_factor_defaults(tmp_path):
    result = evaluate_runtime_config(None, {}, "prod", {}, server=True)
    ceiling = default_max_workers()[0]
    assert result == {"twelve": {"port": 4000, "host": "0.0.0.0", "web_concurrency": 1,
                                 "max_workers": ceiling, "access_log": False,
                                 "boot_timeout": 60.0, "worker_timeout": 30.0}}
    result = evaluate_runtime_config(None, {}, "prod", {"PORT": "8080", "HOST": "127.0.0.1",
                                                        "WEB_CONCURRENCY": "4",
                                                        "TWELVE_ACCESS_LOG": "yes",
                                                        "TWELVE_BOOT_TIMEOUT": "120",
                                                        "TWELVE_WORKER_TIMEOUT": "5.5"},
                                     server=True)
    assert result["twelve"] == {"port": 8080, "host": "127.0.0.1", "web_concurrency": 4,
                                "max_workers": ceiling, "access_log": True,
                                "boot_timeout": 120.0, "worker_timeout": 5.5}


def test_server_settings_set_by_config_are_not_read(tmp_path):
    write(tmp_path / "runtime.py", 'config("twelve", port=env.int("HTTP_PORT", default=5000))\n')
    result = evaluate_runtime_config(tmp_path / "runtime.py", {"twelve": {"host": "::"}}, "prod",
                                     {"PORT": "abc", "HOST": "ignored"}, server=True)
    assert result["twelve"] == {"port": 5000, "host": "::", "web_concurrency": 1,
                                "max_workers": default_max_workers()[0], "access_log": False,
                                "boot_timeout": 60.0, "worker_timeout": 30.0}
    rows = describe_environment(tmp_path / "runtime.py", {"twelve": {"host": "::"}}, "prod", {})
    assert [variable.name for variable, _ in rows] == ["HTTP_PORT", "WEB_CONCURRENCY",
                                                       "TWELVE_MAX_WORKERS", "TWELVE_ACCESS_LOG",
                                                       "TWELVE_BOOT_TIMEOUT",
                                                       "TWELVE_WORKER_TIMEOUT"]


def test_server_problems_join_the_app_problems(tmp_path):
    write(tmp_path / "runtime.py",
          'config("web", key=env.secret("SECRET_KEY_BASE", min_length=64))\n')
    with pytest.raises(ConfigError) as caught:
        evaluate_runtime_config(tmp_path / "runtime.py", {}, "prod",
                                {"PORT": "abc", "WEB_CONCURRENCY": "0"}, server=True)
    err = caught.value
    assert [p.name for p in err.problems] == ["SECRET_KEY_BASE", "PORT", "WEB_CONCURRENCY"]
    text = err.render()
    assert "3 problems" in text
    assert "PORT              not an integer: 'abc'" in text
    assert "WEB_CONCURRENCY   must be at least 1, got 0" in text
    assert "SECRET_KEY_BASE   missing (a secret of at least 64 characters)" in text


# -- the declared environment -------------------------------------------------------------------

def runtime_for_listing(tmp_path) -> Path:
    return write(tmp_path / "runtime.py", """
        config("web",
               db=env.url("DATABASE_URL", schemes=["postgresql"], help="the main database"),
               key=env.secret("SECRET_KEY_BASE", min_length=64),
               debug=env.bool("DEBUG", default=False),
               mode=env.str("MODE", default="fast", choices=["fast", "slow"]),
               motd=env.str("MOTD", default="hello world"),
               dsn=env.url("SENTRY_DSN", default=None))
    """)


def test_describe_environment_lists_every_variable_and_whether_it_is_set(tmp_path):
    rows = describe_environment(runtime_for_listing(tmp_path), {}, "prod", {"DEBUG": "1",
                                                                           "MODE": ""})
    listed = [(v.name, v.type, v.default, v.required, v.secret, present) for v, present in rows]
    assert listed == [
        ("DATABASE_URL", "url", None, True, False, False),
        ("SECRET_KEY_BASE", "secret", None, True, True, False),
        ("DEBUG", "bool", "false", False, False, True),
        ("MODE", "str", "fast", False, False, False),
        ("MOTD", "str", "hello world", False, False, False),
        ("SENTRY_DSN", "url", None, False, False, False),
        ("PORT", "int", "4000", False, False, False),
        ("HOST", "str", "0.0.0.0", False, False, False),
        ("WEB_CONCURRENCY", "int", "1", False, False, False),
        ("TWELVE_MAX_WORKERS", "int", None, False, False, False),
        ("TWELVE_ACCESS_LOG", "bool", "false", False, False, False),
        ("TWELVE_BOOT_TIMEOUT", "float", "60.0", False, False, False),
        ("TWELVE_WORKER_TIMEOUT", "float", "30.0", False, False, False),
    ]
    assert config_module._installed is None  # describing does not install anything


def test_describe_environment_still_fails_on_a_broken_file(tmp_path):
    write(tmp_path / "runtime.py", "1 / 0\n")
    with pytest.raises(ConfigError, match="^releases/1/runtime.py:2: ZeroDivisionError"):
        describe_environment(tmp_path / "runtime.py", {}, "prod", {},
                             source="releases/1/runtime.py")


def test_format_environment(tmp_path):
    rows = describe_environment(runtime_for_listing(tmp_path), {}, "prod", {"DEBUG": "1"},
                                server=False)
    assert format_environment(rows).splitlines() == [
        "NAME             TYPE    DEFAULT      REQUIRED  SECRET  SET  FROM",
        "DATABASE_URL     url     -            yes       no      no   -",
        "SECRET_KEY_BASE  secret  -            yes       yes     no   -",
        "DEBUG            bool    false        no        no      yes  environment",
        "MODE             str     fast         no        no      no   default",
        "MOTD             str     hello world  no        no      no   default",
        "SENTRY_DSN       url     -            no        no      no   -",
    ]
    from_file = format_environment(rows, {"DEBUG": "env file"}).splitlines()
    assert from_file[3].endswith("yes  env file")
    assert format_environment([]) == "No environment variables are declared."


def test_format_env_example(tmp_path):
    rows = describe_environment(runtime_for_listing(tmp_path), {}, "prod", {}, server=False)
    assert format_env_example(rows) == (
        "# DATABASE_URL: url, required - the main database; "
        "e.g. postgresql://user:password@localhost:5432/app\n"
        "#DATABASE_URL=\n\n"
        "# SECRET_KEY_BASE: secret, required, at least 64 characters; "
        "e.g. <64+ random characters; generate one with `twelve gen.secret`>\n"
        "#SECRET_KEY_BASE=\n\n"
        "# DEBUG: bool, default false\n"
        "DEBUG=false\n\n"
        "# MODE: str, default fast, one of: fast, slow\n"
        "MODE=fast\n\n"
        "# MOTD: str, default hello world\n"
        "MOTD='hello world'\n\n"
        "# SENTRY_DSN: url, optional\n"
        "#SENTRY_DSN=\n")


# -- development: get_env without a boot -------------------------------------------------------

def project(tmp_path: Path) -> Path:
    write(tmp_path / "config" / "config.py", 'config("web", greeting="hi", env=config_env())\n')
    write(tmp_path / "config" / "dev.py", 'config("web", debug=True)\n')
    write(tmp_path / "config" / "prod.py", 'config("web", debug=False)\n')
    write(tmp_path / "config" / "runtime.py", 'config("web", name=env.str("WHO", default="you"))\n')
    return tmp_path


def test_get_env_evaluates_the_dev_config_lazily(tmp_path, monkeypatch):
    monkeypatch.chdir(project(tmp_path))
    monkeypatch.delenv("TWELVE_ENV", raising=False)
    monkeypatch.setenv("WHO", "dev-user")
    assert get_env("web") == {"greeting": "hi", "env": "dev", "debug": True, "name": "dev-user"}
    assert config_env() == "dev"
    monkeypatch.setenv("WHO", "changed")
    assert get_env("web", "name") == "dev-user"  # evaluated once


def test_get_env_fallback_follows_twelve_env(tmp_path, monkeypatch):
    monkeypatch.chdir(project(tmp_path))
    monkeypatch.setenv("TWELVE_ENV", "prod")
    assert config_env() == "prod"
    assert get_env("web", "debug") is False


def test_get_env_fallback_raises_config_error(tmp_path, monkeypatch):
    write(tmp_path / "config" / "runtime.py", 'config("web", key=env.secret("TWELVE_TEST_KEY"))\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TWELVE_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"\(config/runtime.py\): 1 problem"):
        get_env("web", "key")


def test_get_env_fallback_without_a_config_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert get_env("web", "x", 1) == 1


# -- what importing costs -----------------------------------------------------------------------

def test_importing_the_runtime_config_pulls_in_only_the_stdlib():
    code = textwrap.dedent(f"""
        import sys
        before = set(sys.modules)
        sys.path.insert(0, {str(SRC)!r})
        import twelve.runtime.config.store
        new = sorted(set(sys.modules) - before)
        print("\\n".join(new))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=SRC.parent).stdout.split()
    assert "twelve.runtime.config.store" in out
    foreign = [name for name in out if name.split(".")[0] not in sys.stdlib_module_names
               and not name.startswith("twelve")]
    assert foreign == []
    heavy = {"inspect", "dataclasses", "typing", "json", "pathlib", "urllib.parse", "copy"}
    assert heavy.isdisjoint(out)
