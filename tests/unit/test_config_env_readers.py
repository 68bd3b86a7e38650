"""The typed env readers: parsing, defaults, constraints, and how problems are reported."""
from __future__ import annotations

from pathlib import Path

import pytest

from twelve.runtime.config.store import ConfigError, env
from twelve.runtime.config.env import Recorder


pytestmark = pytest.mark.usefixtures("no_active_config")


def read(environ, reader, *args, **kwargs):
    """Call a reader inside an evaluation; return (value, problems by name)."""
    with Recorder(environ) as recorder:
        value = getattr(env, reader)(*args, **kwargs)
    return value, {name: p.problem for name, p in recorder.problems.items()}


def problem_of(environ, reader, *args, **kwargs) -> str:
    value, problems = read(environ, reader, *args, **kwargs)
    assert list(problems) == [args[0]]
    return problems[args[0]]


# -- str ----------------------------------------------------------------------------------------

def test_str_returns_the_value_unchanged():
    assert read({"NAME": " hi there "}, "str", "NAME") == (" hi there ", {})


def test_str_default_when_unset_or_blank():
    assert read({}, "str", "NAME", default="x") == ("x", {})
    assert read({"NAME": "  "}, "str", "NAME", default="x") == ("x", {})
    assert read({}, "str", "NAME", default=None) == (None, {})


def test_str_required_and_missing():
    assert problem_of({}, "str", "NAME") == "missing (a string)"


def test_str_choices():
    assert read({"MODE": "fast"}, "str", "MODE", choices=["fast", "slow"]) == ("fast", {})
    assert problem_of({"MODE": "quick"}, "str", "MODE", choices=["fast", "slow"]) == \
        "not one of fast, slow: 'quick'"
    assert problem_of({}, "str", "MODE", choices=["fast", "slow"]) == \
        "missing (one of: fast, slow)"


def test_str_min_length():
    assert problem_of({"KEY": "abc"}, "str", "KEY", min_length=8) == \
        "too short (needs 8, got 3): 'abc'"
    assert read({"KEY": "abcdefgh"}, "str", "KEY", min_length=8) == ("abcdefgh", {})


# -- int / float --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, value", [("42", 42), (" 42 ", 42), ("-7", -7), ("+3", 3)])
def test_int_parses_decimal(raw, value):
    assert read({"N": raw}, "int", "N") == (value, {})


@pytest.mark.parametrize("raw", ["4.0", "abc", "4_000", "0x10", "١٢", "4 0"])
def test_int_rejects_anything_but_plain_decimal(raw):
    assert problem_of({"N": raw}, "int", "N") == f"not an integer: {raw!r}"


def test_int_bounds():
    assert problem_of({"PORT": "0"}, "int", "PORT", min=1, max=65535) == \
        "must be between 1 and 65535, got 0"
    assert problem_of({"PORT": "70000"}, "int", "PORT", min=1, max=65535) == \
        "must be between 1 and 65535, got 70000"
    assert problem_of({"N": "0"}, "int", "N", min=1) == "must be at least 1, got 0"
    assert problem_of({"N": "9"}, "int", "N", max=8) == "must be at most 8, got 9"
    assert read({"N": "8"}, "int", "N", min=1, max=8) == (8, {})
    assert problem_of({}, "int", "PORT", min=1, max=65535) == \
        "missing (an integer between 1 and 65535)"


def test_int_choices():
    assert read({"N": "2"}, "int", "N", choices=[1, 2]) == (2, {})
    assert problem_of({"N": "3"}, "int", "N", choices=[1, 2]) == "not one of 1, 2: '3'"


def test_invalid_value_returns_the_default_during_an_evaluation():
    assert read({"PORT": "abc"}, "int", "PORT", default=4000) == \
        (4000, {"PORT": "not an integer: 'abc'"})


def test_float():
    assert read({"R": " 0.25 "}, "float", "R") == (0.25, {})
    assert read({"R": "3"}, "float", "R") == (3.0, {})
    for raw in ("nan", "inf", "x", "1_0"):
        assert problem_of({"R": raw}, "float", "R") == f"not a number: {raw!r}"
    assert problem_of({"R": "2"}, "float", "R", min=0, max=1) == \
        "must be between 0 and 1, got 2.0"


# -- bool ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["true", "TRUE", "1", "yes", "On", " on "])
def test_bool_true(raw):
    assert read({"B": raw}, "bool", "B") == (True, {})


@pytest.mark.parametrize("raw", ["false", "False", "0", "no", "OFF"])
def test_bool_false(raw):
    assert read({"B": raw}, "bool", "B") == (False, {})


def test_bool_rejects_other_words():
    assert problem_of({"B": "maybe"}, "bool", "B") == \
        "not a boolean (true/false, 1/0, yes/no, on/off): 'maybe'"
    assert read({}, "bool", "B", default=False) == (False, {})


# -- list / json --------------------------------------------------------------------------------

def test_list_splits_strips_and_drops_empty_items():
    assert read({"L": " a, b ,,c, "}, "list", "L") == (["a", "b", "c"], {})
    assert read({"L": "a:b"}, "list", "L", sep=":") == (["a", "b"], {})
    assert read({}, "list", "L", default=["x"]) == (["x"], {})


def test_list_choices_apply_to_each_item():
    assert problem_of({"L": "a,z"}, "list", "L", choices=["a", "b"]) == "not one of a, b: 'z'"


def test_json():
    assert read({"J": '{"a": [1, 2]}'}, "json", "J") == ({"a": [1, 2]}, {})
    text = problem_of({"J": "{nope"}, "json", "J")
    assert text.startswith("not valid JSON (") and text.endswith(": '{nope'")
    assert "line 1 column 2" in text


# -- url ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["https://example.com", "sqlite:///relative.db",
                                 "sqlite:////abs/path.db", "postgresql://u:p@db:5432/app",
                                 "redis://localhost:6379/0"])
def test_url_valid(raw):
    assert read({"U": raw}, "url", "U") == (raw, {})


@pytest.mark.parametrize("raw", ["localhost:5432", "example.com", "/just/a/path"])
def test_url_needs_a_scheme(raw):
    assert problem_of({"U": raw}, "url", "U") == f"not a URL (expected scheme://...): {raw!r}"


def test_url_with_a_bad_port():
    assert problem_of({"U": "http://host:abc/"}, "url", "U") == \
        "not a valid URL: 'http://host:abc/'"


def test_url_schemes():
    schemes = ("postgresql", "sqlite")
    assert read({"U": "sqlite:///app.db"}, "url", "U", schemes=schemes) == ("sqlite:///app.db", {})
    # A SQLAlchemy driver suffix still counts as the base scheme.
    assert read({"U": "postgresql+psycopg://db/app"}, "url", "U", schemes=schemes)[1] == {}
    assert problem_of({"U": "mysql://db/app"}, "url", "U", schemes=schemes) == \
        "scheme 'mysql' is not one of: postgresql, sqlite"
    assert problem_of({}, "url", "U", schemes=schemes) == "missing (a postgresql or sqlite URL)"


def test_url_problem_hides_user_info():
    text = problem_of({"U": "db-user:hunter2@db.internal/app"}, "url", "U")
    assert "hunter2" not in text and "db-user" not in text
    assert "***@db.internal/app" in text


# -- path / secret ------------------------------------------------------------------------------

def test_path_returns_a_path():
    assert read({"P": "/var/lib/app"}, "path", "P") == (Path("/var/lib/app"), {})
    assert read({}, "path", "P", default="data") == (Path("data"), {})


def test_secret_returns_a_plain_str():
    value, problems = read({"S": "x" * 64}, "secret", "S", min_length=64)
    assert type(value) is str and value == "x" * 64 and problems == {}


def test_secret_problems_never_quote_the_value():
    assert problem_of({"S": "short-secret"}, "secret", "S", min_length=64) == \
        "too short (needs 64, got 12)"
    assert problem_of({}, "secret", "S", min_length=64) == \
        "missing (a secret of at least 64 characters)"
    assert problem_of({}, "secret", "S") == "missing (a secret)"


# -- declarations and the two modes -------------------------------------------------------------

def test_every_read_declares_its_variable_first_declaration_wins():
    with Recorder({"PORT": "80"}) as recorder:
        env.int("PORT", default=4000, min=1, help="port")
        env.str("PORT", default="other")
        env.secret("KEY", min_length=64)
        env.bool("DEBUG", default=False)
    port, key, debug = recorder.variables.values()
    assert port == ("PORT", "int", "4000", False, False, None, None, "port", "4000")
    assert (key.type, key.required, key.secret, key.min_length, key.default) == \
        ("secret", True, True, 64, None)
    assert (debug.default, debug.example) == ("false", "false")


def test_a_variable_with_problems_is_listed_once():
    with Recorder({"PORT": "abc"}) as recorder:
        env.int("PORT")
        env.int("PORT", default=1)
    assert list(recorder.problems) == ["PORT"]


def test_outside_an_evaluation_a_problem_raises_at_once(monkeypatch):
    monkeypatch.setenv("TWELVE_TEST_PORT", "abc")
    with pytest.raises(ConfigError) as caught:
        env.int("TWELVE_TEST_PORT", default=4000)
    assert caught.value.exit_code == 78
    assert [p.name for p in caught.value.problems] == ["TWELVE_TEST_PORT"]
    assert "not an integer: 'abc'" in caught.value.render()


def test_outside_an_evaluation_readers_use_os_environ(monkeypatch):
    monkeypatch.setenv("TWELVE_TEST_N", "12")
    monkeypatch.delenv("TWELVE_TEST_MISSING", raising=False)
    assert env.int("TWELVE_TEST_N") == 12
    assert env.str("TWELVE_TEST_MISSING", default="d") == "d"
    with pytest.raises(ConfigError, match="1 problem"):
        env.str("TWELVE_TEST_MISSING")
