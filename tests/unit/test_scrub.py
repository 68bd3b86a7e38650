"""Recorder.scrub hides every secret seen, whole, escaped or cut short, in time linear in the
secret (up to a log factor), with the same result as the quadratic algorithm it replaced."""
from __future__ import annotations

import importlib.util
import json
import random
import string
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from twelve.runtime.config.env import NOT_SHOWN, SCRUB_PREFIX, Recorder

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "scrub.py"


def _forms(secrets) -> list[str]:
    forms = {form for secret in secrets
             for form in (secret, repr(secret)[1:-1], ascii(secret)[1:-1],
                          repr(secret.encode("utf-8", "replace"))[2:-1])}
    return sorted(forms, key=lambda form: (-len(form), form))


def _benchmark():
    """benchmarks/scrub.py, whose old_scrub is the baseline it measures against: the algorithm
    before issue 12, every prefix length of every form tried, form by form (quadratic)."""
    spec = importlib.util.spec_from_file_location("scrub_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


old_scrub = _benchmark().old_scrub


def reference_scrub(secrets: set[str], text: str) -> str:
    """The specification, as plainly (and slowly) as it can be written: the old algorithm with
    the lengths outermost, so the longest piece of any form goes first."""
    forms = _forms(secrets)
    for length in range(max(map(len, forms)), 0, -1):
        for form in forms:
            if length == len(form) or SCRUB_PREFIX <= length < len(form):
                text = text.replace(form[:length], NOT_SHOWN)
    return text


def plain(secret: str) -> bool:
    """Whether every form of the secret is the secret as written."""
    return len(_forms({secret})) == 1


def scrub(secrets, text: str) -> str:
    recorder = Recorder({})
    recorder._secrets.update(secrets)
    return recorder.scrub(text)


# Few distinct characters, so that secrets repeat characters, overlap and contain each other;
# quotes, backslashes, control and non-ASCII characters, so that repr/ascii forms differ; and
# the characters of NOT_SHOWN, so that a replacement can form a new match with its neighbours.
ALPHABET = "aab'\"\\\n\x00é€<>secrt"
secret_text = st.text(ALPHABET, min_size=1, max_size=14)


@st.composite
def secrets_and_text(draw):
    secrets = draw(st.lists(secret_text, min_size=1, max_size=3))
    if draw(st.booleans()):  # one secret inside another
        outer = draw(st.sampled_from(secrets))
        start = draw(st.integers(0, len(outer) - 1))
        secrets.append(outer[start:start + draw(st.integers(1, len(outer)))])
    forms = [form for s in secrets for form in (s, repr(s)[1:-1], ascii(s)[1:-1])]
    pieces = []
    for _ in range(draw(st.integers(0, 8))):
        form = draw(st.sampled_from(forms))
        choice = draw(st.integers(0, 2))
        if choice == 0:
            pieces.append(form)
        elif choice == 1:  # cut short, at any length
            pieces.append(form[:draw(st.integers(0, len(form)))])
        else:
            pieces.append(draw(st.text(ALPHABET, max_size=6)))
    return set(secrets), "".join(pieces)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secrets_and_text())
@example(({"aaaaaaab"}, "aaaaaaaab"))  # the longest prefix is not the leftmost match
@example(({"aaaaaaaa"}, "a" * 15))
@example(({"abcdefgh", "cdefghij"}, "abcdefghij"))  # equal lengths: a fixed order
@example(({"secret>x1"}, "<secret>x1<secret>x1"))
def test_scrub_matches_the_reference(case):
    secrets, text = case
    assert scrub(secrets, text) == reference_scrub(secrets, text)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(ALPHABET.replace("\\", "").replace("'", ""), min_size=1,
                        max_size=14).filter(plain), min_size=1, max_size=3),
       st.data())
def test_scrub_matches_the_old_algorithm_where_it_did_not_leak(secrets, data):
    """Secrets whose forms are all the secret as written (no escapes): the old algorithm
    scrubbed them right, and the new one gives the same result."""
    pieces = data.draw(st.lists(st.sampled_from(secrets).flatmap(
        lambda s: st.integers(0, len(s)).map(lambda n: s[:n])) | st.text(ALPHABET, max_size=6),
        max_size=8))
    text = "".join(pieces)
    assert scrub(set(secrets), text) == old_scrub(set(secrets), text)


@pytest.mark.parametrize("secret", ["abcdefgh\\ijklmnopqrstuvwxyz", "abcdefgh\u00e9-ijklmnopqrst",
                                    "abcdefgh'\"ijklmnopqrstuvwx"])
def test_a_secret_with_escapes_quoted_as_written_is_hidden_whole(secret):
    """The old algorithm hid only the part before the first escaped character."""
    text = f"invalid value: {secret}"
    assert old_scrub({secret}, text) != "invalid value: " + NOT_SHOWN
    assert scrub({secret}, text) == "invalid value: " + NOT_SHOWN
    assert scrub({secret}, f"cut: {secret[:-3]}!") == f"cut: {NOT_SHOWN}!"


@settings(max_examples=300, deadline=None)
@given(st.lists(secret_text, min_size=1, max_size=3), st.text(ALPHABET, max_size=60))
def test_scrub_matches_the_reference_on_any_text(secrets, text):
    assert scrub(set(secrets), text) == reference_scrub(set(secrets), text)


def test_a_120_kb_secret_is_hidden_whole_escaped_and_cut_short():
    secret = "".join(random.Random(12).choices(string.ascii_letters + "'\"", k=120_000))
    assert repr(secret)[1:-1] != secret, "repr escapes its quotes"
    text = (f"whole {secret} repr {secret!r} cut {repr(secret)[:50_000]}... "
            f"short {secret[:SCRUB_PREFIX - 1]}|")
    assert scrub({secret}, text) == (f"whole {NOT_SHOWN} repr '{NOT_SHOWN}' cut '{NOT_SHOWN}... "
                                     f"short {secret[:SCRUB_PREFIX - 1]}|")


def test_a_120_kb_secret_of_one_repeated_character():
    secret = "x" * 120_000
    text = f"[{secret}][{'x' * 70_000}][xxxxx]"
    assert scrub({secret}, text) == f"[{NOT_SHOWN}][{NOT_SHOWN}][xxxxx]"


def test_benchmark_smoke():
    proc = subprocess.run([sys.executable, str(BENCHMARK), "--size", "2000", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["benchmark"] == "scrub" and result["size"] == 2000
    for run in ("new", "old"):
        assert result[run]["long"] > 0 and result[run]["short"] > 0
    assert isinstance(result["speedup"], float)
