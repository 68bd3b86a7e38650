"""Environment files read as systemd reads EnvironmentFile=, and how they meet the environment."""
from __future__ import annotations

import pytest

from twelve.runtime.config.env import ConfigError
from twelve.runtime.config.envfile import (ENV_FILE, FILE_KEYS, apply_env_file, parse_env_file,
                                           read_env_file, value_sources)

SECRET = "Zq8-" + "s" * 60

FILE = f"""\
# a comment
  ; another
export GREETING="hello world"
PLAIN = value with  spaces   \t
SINGLE='verbatim $HOME \\n "x"'
DOUBLE="a \\"quote\\", a \\\\ backslash, \\$dollar, \\n kept"
HASH=not#a comment
CONTINUED=first\\
second
EMPTY=
SECRET_KEY_BASE={SECRET}
"""


def test_systemd_rules():
    values, problems = parse_env_file(FILE)
    assert problems == []
    assert values == {
        "GREETING": "hello world",
        "PLAIN": "value with  spaces",
        "SINGLE": 'verbatim $HOME \\n "x"',
        "DOUBLE": 'a "quote", a \\ backslash, $dollar, \\n kept',
        "HASH": "not#a comment",
        "CONTINUED": "firstsecond",
        "EMPTY": "",
        "SECRET_KEY_BASE": SECRET,
    }


def test_every_bad_line_is_named_and_no_value_is_shown(tmp_path):
    path = tmp_path / "bad.env"
    path.write_text(f"GOOD=1\n{SECRET}\n9LIVES=x\nOPEN=\"{SECRET}\n")
    with pytest.raises(ConfigError) as info:
        read_env_file(str(path))
    text = info.value.render()
    assert info.value.exit_code == 78
    assert f"invalid env file {path}: 3 problems" in text
    assert "line 2: expected NAME=VALUE" in text
    assert "line 3: '9LIVES' is not a variable name" in text
    assert "line 4: the quoted value of OPEN is not closed" in text
    assert SECRET not in text


def test_a_missing_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the env file .*nope.env"):
        read_env_file(str(tmp_path / "nope.env"))


def test_the_environment_wins_and_a_second_reading_sees_the_file_anew(tmp_path):
    path = tmp_path / "app.env"
    path.write_text("PORT=4000\nGREETING=hi\nOLD=1\n")
    first = apply_env_file({"PORT": "5000"}, str(path))
    assert (first["PORT"], first["GREETING"], first["OLD"]) == ("5000", "hi", "1")
    assert first[ENV_FILE] == str(path) and first[FILE_KEYS] == "GREETING,OLD"
    assert value_sources(first) == {"GREETING": "env file", "OLD": "env file"}
    path.write_text("GREETING=hello\n")  # edited before a restart, which inherits `first`
    second = apply_env_file(first, None)
    assert second["GREETING"] == "hello" and "OLD" not in second and second["PORT"] == "5000"


def test_no_file_changes_nothing():
    environ = {"A": "1"}
    assert apply_env_file(environ, None) is environ
