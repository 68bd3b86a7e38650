"""Every input from the environment ends in a value or a problem in the one exit-78 list, never
another exception: the typed readers, the server settings (and the same settings set in code),
and the variables the node reads at bind time. Property-tested with what os.environ can hold:
any bytes but NUL, decoded as Python decodes the environment (surrogateescape), huge ones too.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twelve.runtime.config import server as server_module
from twelve.runtime.config.env import ConfigError, Recorder, env
from twelve.runtime.config.server import WORKERS_LIMIT, default_max_workers
from twelve.runtime.config.store import evaluate_runtime_config
from twelve.runtime.errors import CONFIG

PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

# What os.environ can hold: bytes without NUL, as os.fsdecode turns them into str.
environ_bytes = st.binary(min_size=1, max_size=300).map(lambda b: b.replace(b"\0", b"")) \
    .filter(bool).map(os.fsdecode)
near_valid = st.one_of(st.integers().map(str), st.floats().map(str), st.sampled_from(
    ["true", "no", " 42 ", "4_000", "٣", "1e3", "nan", "-0", "[1]", "{}", "null", "https://x",
     "https://u:p@h:99999/", "localhost:5432", "::", "[::1]", "0.0.0.0", "a..b", "-a", "é.com",
     "fe80::1%eth0", "1" * 5000]))
huge = st.tuples(st.sampled_from(["x", "9", "é", "\udcff", ".", "a.", " "]),
                 st.integers(1000, 120_000)).map(lambda pair: pair[0] * pair[1])
environ_text = st.one_of(environ_bytes, near_valid, huge, st.text(max_size=50).filter(
    lambda t: "\0" not in t and _encodable(t)))


def _encodable(text: str) -> bool:
    try:
        os.fsencode(text)
    except UnicodeError:
        return False
    return True


READS = {
    "str": lambda: env.str("V"),
    "str choices": lambda: env.str("V", choices=["a", "b"]),
    "str min_length": lambda: env.str("V", min_length=3),
    "int": lambda: env.int("V"),
    "int bounded": lambda: env.int("V", min=1, max=65535),
    "int choices": lambda: env.int("V", choices=[1, 2]),
    "float": lambda: env.float("V", min=0.0, max=1.0),
    "bool": lambda: env.bool("V"),
    "list": lambda: env.list("V", choices=["a", "b"]),
    "list sep": lambda: env.list("V", sep=":"),
    "json": lambda: env.json("V"),
    "url": lambda: env.url("V"),
    "url schemes": lambda: env.url("V", schemes=["postgresql", "sqlite"]),
    "path": lambda: env.path("V"),
    "secret": lambda: env.secret("V", min_length=64),
}


@pytest.mark.parametrize("reader", sorted(READS))
@PROPERTY
@given(text=environ_text)
def test_every_reader_gives_a_value_or_a_problem(reader, text, no_active_config):
    with Recorder({"V": text}) as recorder:
        READS[reader]()  # any exception but a problem fails the test
    assert set(recorder.problems) <= {"V"}
    for problem in recorder.problems.values():
        assert isinstance(problem.problem, str) and len(problem.problem) < 300
    # Outside an evaluation, the same read raises a ConfigError or nothing.
    os.environ["V"] = text
    try:
        READS[reader]()
    except ConfigError as error:
        assert error.exit_code == CONFIG and [p.name for p in error.problems] == ["V"]
    finally:
        del os.environ["V"]


SERVER_VARIABLES = ["PORT", "HOST", "WEB_CONCURRENCY", "TWELVE_MAX_WORKERS", "TWELVE_ACCESS_LOG",
                    "TWELVE_SERVER"]


def evaluate_server(environ: dict, runtime_py: Path | None = None,
                    build_config: dict | None = None) -> dict:
    return evaluate_runtime_config(runtime_py, build_config or {}, "prod", environ, server=True,
                                   web_servers=("gunicorn", "waitress"))["twelve"]


def assert_sane(twelve: dict) -> None:
    """What the node is handed: nothing it could choke on, and no more workers than allowed."""
    assert 1 <= twelve["port"] <= 65535
    assert server_module.host_problem(twelve["host"]) is None
    assert 1 <= twelve["web_concurrency"] <= twelve["max_workers"] <= WORKERS_LIMIT


@pytest.mark.parametrize("name", SERVER_VARIABLES)
@PROPERTY
@given(text=environ_text)
def test_every_server_variable_gives_a_value_or_a_problem(name, text, no_active_config):
    try:
        twelve = evaluate_server({name: text})
    except ConfigError as error:
        assert [p.name for p in error.problems] == [name]
        assert error.exit_code == CONFIG
        return
    assert_sane(twelve)


@PROPERTY
@given(count=st.integers(min_value=-10, max_value=10**30), ceiling=st.one_of(
    st.none(), st.integers(min_value=-10, max_value=5000)))
def test_web_concurrency_never_passes_the_ceiling(count, ceiling, no_active_config):
    environ = {"WEB_CONCURRENCY": str(count)}
    if ceiling is not None:
        environ["TWELVE_MAX_WORKERS"] = str(ceiling)
    limit = ceiling if ceiling is not None and 1 <= ceiling <= WORKERS_LIMIT \
        else default_max_workers()[0]
    try:
        twelve = evaluate_server(environ)
    except ConfigError as error:
        names = [p.name for p in error.problems]
        assert "WEB_CONCURRENCY" in names or "TWELVE_MAX_WORKERS" in names
        assert not 1 <= count <= limit or names == ["TWELVE_MAX_WORKERS"]
        return
    assert 1 <= count <= limit and twelve["web_concurrency"] == count
    assert_sane(twelve)


def test_a_billion_workers_is_a_named_problem_with_the_ceiling(no_active_config):
    ceiling, why = default_max_workers()
    with pytest.raises(ConfigError) as caught:
        evaluate_server({"WEB_CONCURRENCY": "1000000000", "PORT": "abc"})
    problems = {p.name: p for p in caught.value.problems}
    assert list(problems) == ["PORT", "WEB_CONCURRENCY"]  # in the one list with the others
    assert problems["WEB_CONCURRENCY"].problem == server_module.TOO_MANY_WORKERS.format(
        count=1000000000, ceiling=ceiling, why=why)
    assert problems["WEB_CONCURRENCY"].example == f"WEB_CONCURRENCY={ceiling}"


def test_the_default_ceiling_follows_the_usable_cpus():
    cpus = len(os.sched_getaffinity(0))
    ceiling, why = default_max_workers()
    assert ceiling == min(256, max(8, 4 * cpus))
    assert f"{cpus} CPU" in why


def test_twelve_max_workers_raises_and_lowers_the_ceiling(no_active_config):
    assert evaluate_server({"WEB_CONCURRENCY": "300", "TWELVE_MAX_WORKERS": "300"})[
        "web_concurrency"] == 300
    with pytest.raises(ConfigError) as caught:
        evaluate_server({"WEB_CONCURRENCY": "3", "TWELVE_MAX_WORKERS": "2"})
    [problem] = caught.value.problems
    assert problem.problem == ("3 worker processes is more than the ceiling of 2 "
                               "(set by TWELVE_MAX_WORKERS)")
    assert problem.example == "WEB_CONCURRENCY=2   (or raise the ceiling: TWELVE_MAX_WORKERS=3)"
    with pytest.raises(ConfigError) as caught:
        evaluate_server({"TWELVE_MAX_WORKERS": "5000"})
    assert [(p.name, p.problem) for p in caught.value.problems] == [
        ("TWELVE_MAX_WORKERS", f"must be between 1 and {WORKERS_LIMIT}, got 5000")]


# The same settings set in code: checked by the same rules, named by where they were set.
CONFIG_VALUES = st.one_of(st.integers(min_value=-10, max_value=10**12), st.booleans(),
                          st.floats(allow_nan=True), environ_text, st.none(),
                          st.lists(st.integers(), max_size=2))


@pytest.mark.parametrize("key", ["port", "host", "web_concurrency", "max_workers",
                                 "access_log", "server", "graceful_timeout"])
@PROPERTY
@given(value=CONFIG_VALUES)
def test_every_server_setting_set_in_code_gives_a_value_or_a_problem(key, value,
                                                                     no_active_config):
    try:  # as config("twelve", key=value) leaves it, in config.py or runtime.py alike
        twelve = evaluate_server({}, build_config={"twelve": {key: value}})
    except ConfigError as error:
        assert [p.name for p in error.problems] == [f'config("twelve", {key}=...)']
        return
    assert_sane(twelve)
    assert float(twelve.get("graceful_timeout", 0)) >= 0


def test_workers_set_in_code_meet_the_same_ceiling(tmp_path, no_active_config):
    runtime_py = tmp_path / "runtime.py"
    runtime_py.write_text("from twelve import config\n"
                          "config('twelve', web_concurrency=1_000_000_000)\n")
    with pytest.raises(ConfigError) as caught:
        evaluate_server({"WEB_CONCURRENCY": "2"}, runtime_py)
    [problem] = caught.value.problems
    assert problem.name == 'config("twelve", web_concurrency=...)'
    assert problem.problem.startswith("1000000000 worker processes is more than the ceiling")


# -- HOST ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "::", "127.0.0.1", "::1", "localhost", "127.1",
                                  "web-1.internal", "fe80::1%eth0", "é.example", "a" * 63,
                                  ".".join(["a" * 63] * 3) + "." + "a" * 61])
def test_a_host_that_may_be_an_address_is_accepted(host):
    assert server_module.host_problem(host) is None


@pytest.mark.parametrize("host", ["x" * 100_000, "a" * 64, "a..b", ".a", "[::1]", " 0.0.0.0",
                                  "a b", "-a", "a_b%", "\udcff", ".".join(["a" * 63] * 4)])
def test_a_host_that_cannot_be_an_address_is_a_problem(host, no_active_config):
    with pytest.raises(ConfigError) as caught:
        evaluate_server({"HOST": host})
    [problem] = caught.value.problems
    assert problem.name == "HOST" and len(problem.problem) < 120


@PROPERTY
@given(host=st.one_of(environ_text, st.from_regex(r"\A[a-z0-9.-]{1,80}\Z")))
def test_a_host_the_config_accepts_never_breaks_the_resolver(host):
    """What passes the config's check is something getaddrinfo takes without an IDNA error (it
    may still resolve to nothing: that is exit 78 at bind time). No resolver is asked: IDNA
    fails before any lookup, so the check is on the encoding step getaddrinfo does."""
    if server_module.host_problem(host) is None:
        host.encode("idna")
