"""ConfigError: one message listing every problem with an example, and secrets never shown."""
from __future__ import annotations

import pytest

from twelve.runtime.config.store import (ConfigError, Problem, describe_environment,
                                   evaluate_build_config, evaluate_runtime_config,
                                   format_env_example, format_environment)

SECRET = "s3cr3t-" + "q" * 5  # 12 characters, recognisable in any output


pytestmark = pytest.mark.usefixtures("no_active_config")


def runtime_error(tmp_path, code, environ, **kwargs) -> ConfigError:
    runtime_py = tmp_path / "runtime.py"
    runtime_py.write_text(code)
    with pytest.raises(ConfigError) as caught:
        evaluate_runtime_config(runtime_py, {}, "prod", environ,
                                source="releases/0.1.0/runtime.py", **kwargs)
    return caught.value


def every_output(err: ConfigError) -> str:
    return "\n".join([str(err), repr(err), err.render(), repr(err.problems), str(err.args)])


def test_the_documented_message(tmp_path):
    err = runtime_error(tmp_path, (
        "from twelve import config, env\n"
        "config('web', port=env.int('PORT'), key=env.secret('SECRET_KEY_BASE', min_length=64))\n"
    ), {"PORT": "abc"})
    assert err.exit_code == 78
    assert err.render() == (
        "error: invalid runtime configuration (releases/0.1.0/runtime.py): 2 problems\n"
        "\n"
        "  PORT              not an integer: 'abc'\n"
        "                    example: PORT=4000\n"
        "  SECRET_KEY_BASE   missing (a secret of at least 64 characters)\n"
        "                    example: SECRET_KEY_BASE=<64+ random characters; "
        "generate one with `twelve gen.secret`>\n"
        "\n"
        "Set these variables in the environment and start again. SECRET_KEY_BASE is a secret: "
        "set it only in the environment the node gets (e.g. an EnvironmentFile= of its systemd "
        "unit, outside the release), never in releases/VSN/env.sh, which ships inside the "
        "release.")
    assert str(err) == "invalid runtime configuration (releases/0.1.0/runtime.py): 2 problems"
    assert "Traceback" not in err.render()


def test_all_problems_are_collected_one_entry_per_variable(tmp_path):
    err = runtime_error(tmp_path, (
        "from twelve import env\n"
        "env.int('A'); env.int('A', default=1); env.bool('B'); env.url('C'); env.str('D')\n"
    ), {"A": "x", "B": "maybe", "C": "nope"})
    assert [p.name for p in err.problems] == ["A", "B", "C", "D"]
    assert err.message.endswith(": 4 problems")
    assert err.render().count("example:") == 4


def test_env_sh_is_suggested_only_when_no_secret_is_among_the_problems(tmp_path):
    plain = runtime_error(tmp_path, "from twelve import env\nenv.int('PORT')\n", {})
    assert plain.render().endswith("\n\nSet these variables in the environment (or in the "
                                   "release's releases/VSN/env.sh) and start again.")
    secrets = runtime_error(tmp_path, (
        "from twelve import env\nenv.int('PORT')\n"
        "env.secret('SECRET_KEY', min_length=50); env.secret('API_TOKEN')\n"
    ), {"SECRET_KEY": "short"})
    hint = secrets.render().split("\n\n")[-1]
    assert hint.startswith("Set these variables in the environment and start again. "
                           "API_TOKEN, SECRET_KEY are secrets: set them only in the environment")
    assert "never in releases/VSN/env.sh" in hint and "(or in" not in hint
    # Set but invalid counts too; a secret read without a problem does not.
    fine = runtime_error(tmp_path, "from twelve import env\nenv.int('PORT')\nenv.secret('K')\n",
                         {"K": "x" * 20})
    assert "(or in the release's releases/VSN/env.sh)" in fine.render()


def test_one_problem_is_singular():
    err = ConfigError(problems=[Problem("X", "missing (a string)", "X=value")], source="here")
    assert str(err) == "invalid runtime configuration (here): 1 problem"


def test_a_long_value_is_truncated(tmp_path):
    err = runtime_error(tmp_path, "from twelve import env\nenv.int('N')\n",
                        {"N": "9" * 30 + "x" * 30})
    shown = err.problems[0].problem.split(": ", 1)[1]
    assert len(shown) == 40 and shown.endswith("...")


@pytest.mark.parametrize("call, example", [
    ("env.int('X')", "X=4000"),
    ("env.int('X', min=5000)", "X=5000"),
    ("env.int('X', max=10)", "X=10"),
    ("env.int('X', default=8)", "X=8"),
    ("env.int('X', example=123)", "X=123"),
    ("env.bool('X')", "X=true"),
    ("env.url('X')", "X=https://example.com"),
    ("env.url('X', schemes=['postgresql'])", "X=postgresql://user:password@localhost:5432/app"),
    ("env.url('X', schemes=['foo'])", "X=foo://localhost"),
    ("env.list('X')", "X=a,b"),
    ("env.list('X', sep=':')", "X=a:b"),
    ("env.json('X')", 'X={"key": "value"}'),
    ("env.str('X', choices=['fast', 'slow'])", "X=fast   (one of: fast, slow)"),
    ("env.secret('X')", "X=<64+ random characters; generate one with `twelve gen.secret`>"),
    ("env.secret('X', min_length=128)",
     "X=<128+ random characters; generate one with `twelve gen.secret 128`>"),
])
def test_examples(tmp_path, call, example):
    # "§" is invalid for every kind that can be invalid; a list or a secret is left unset.
    environ = {} if call.startswith(("env.list", "env.secret")) else {"X": "§"}
    err = runtime_error(tmp_path, f"from twelve import env\n{call}\n", environ)
    assert err.problems[0].example == example
    assert f"example: {example}" in err.render()


def test_a_secret_value_never_appears_in_an_error(tmp_path):
    err = runtime_error(tmp_path, (
        "from twelve import env\n"
        "env.secret('SECRET_KEY_BASE', min_length=64)\n"
        "env.int('PORT')\n"
    ), {"SECRET_KEY_BASE": SECRET, "PORT": "x"})
    assert "SECRET_KEY_BASE   too short (needs 64, got 12)" in err.render()
    assert SECRET not in every_output(err)


def test_a_secret_quoted_by_an_exception_is_scrubbed(tmp_path):
    # int() puts the offending text into its message: that text is the secret.
    err = runtime_error(tmp_path, "from twelve import env\nint(env.secret('TOKEN'))\n",
                        {"TOKEN": SECRET})
    assert "runtime.py:2: ValueError" in err.render()
    assert SECRET not in every_output(err)
    assert err.__cause__ is None


def test_a_secret_default_is_never_listed(tmp_path):
    runtime_py = tmp_path / "runtime.py"
    runtime_py.write_text("from twelve import env\n"
                          f"env.secret('SIGNING_KEY', default={SECRET!r})\n"
                          "env.secret('API_KEY', min_length=32, help='the API key')\n")
    rows = describe_environment(runtime_py, {}, "prod", {"API_KEY": SECRET})
    for variable, _ in rows:
        assert SECRET not in repr(variable)
    assert SECRET not in format_environment(rows)
    assert SECRET not in format_env_example(rows)


def test_a_url_password_is_not_shown(tmp_path):
    err = runtime_error(tmp_path, "from twelve import env\nenv.url('DB', schemes=['postgresql'])\n",
                        {"DB": "mysql://app:hunter2@db/app"})
    assert "hunter2" not in every_output(err)


def test_a_plain_message_renders_with_its_hint():
    err = ConfigError("config/prod.py:3: KeyError: 'x'", hint="  3 | x = d['x']")
    assert err.render() == "error: config/prod.py:3: KeyError: 'x'\n\n  3 | x = d['x']"
    assert err.exit_code == 78 and err.problems == []


def test_build_problems_say_build(tmp_path):
    (tmp_path / "config.py").write_text("from twelve import env\nenv.str('ASSET_HOST')\n")
    with pytest.raises(ConfigError) as caught:
        evaluate_build_config(tmp_path, "prod", {})
    text = caught.value.render()
    assert f"invalid build configuration ({tmp_path.name}/config.py): 1 problem" in text
    assert "ASSET_HOST   missing (a string)" in text
    assert "build again" in text


def test_a_missing_variable_does_not_hide_the_ones_read_after_it(tmp_path):
    """A required variable with a problem reads as a value of its type (not None), so the
    lines using it run on and every later variable is checked too."""
    err = runtime_error(tmp_path, (
        "from twelve import config, env\n"
        "url = env.url('DATABASE_URL')\n"
        "config('app', url=url.replace('postgres://', 'postgresql://'))\n"
        "port = env.int('PORT', min=1, max=65535) + 1\n"
        "root = env.path('STATE_DIRECTORY') / 'app.db'\n"
        "hosts = env.list('ALLOWED_HOSTS') + ['localhost']\n"
        "debug = not env.bool('DEBUG')\n"
        "mode = env.str('MODE', choices=['a', 'b']).upper()\n"
        "key = env.secret('SECRET_KEY_BASE', min_length=64).encode()\n"
    ), {"PORT": "http"})
    assert [p.name for p in err.problems] == ["DATABASE_URL", "PORT", "STATE_DIRECTORY",
                                              "ALLOWED_HOSTS", "DEBUG", "MODE",
                                              "SECRET_KEY_BASE"]


def test_an_integer_too_long_for_int_is_a_problem_not_a_traceback(tmp_path):
    err = runtime_error(tmp_path, "from twelve import env\nenv.int('PORT')\n",
                        {"PORT": "9" * 5000})
    assert err.problems[0].problem == "an integer of 5000 digits: too large"


@pytest.mark.parametrize("secret", ["abc\\def-" + "q" * 8, "p'w\"d-" + "q" * 8,
                                    "pass\tword" + "q" * 8, "Z" * 300, "pässwörd" + "q" * 8])
def test_a_secret_quoted_escaped_or_cut_short_by_an_exception_is_not_shown(tmp_path, secret):
    err = runtime_error(tmp_path, (
        "from twelve import env\n"
        "int(env.secret('API_TOKEN'))\n"
    ), {"API_TOKEN": secret})
    shown = every_output(err)
    for form in (secret, repr(secret)[1:-1], ascii(secret)[1:-1], secret[:8]):
        assert form not in shown, form
    assert "<secret>" in shown


def test_a_default_built_from_a_secret_does_not_show_it(tmp_path):
    code = ("from twelve import config, env\n"
            "pw = env.secret('DB_PASSWORD', default='')\n"
            "config('app', replica=env.url('REPLICA_URL', "
            "default=f'postgresql://app:{pw}@db.internal/app'))\n")
    err = runtime_error(tmp_path, code, {"DB_PASSWORD": SECRET, "REPLICA_URL": "mysql:x"})
    assert SECRET not in every_output(err)
    runtime_py = tmp_path / "runtime.py"
    environ = {"DB_PASSWORD": SECRET}
    listed = format_environment(describe_environment(runtime_py, {}, "prod", environ))
    example = format_env_example(describe_environment(runtime_py, {}, "prod", environ))
    assert SECRET not in listed + example
    assert "postgresql://app:<secret>@db.internal/app" in example
