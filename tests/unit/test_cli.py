"""The `twelve` command's own small commands: gen.secret, help, exit codes."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest


def twelve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twelve", *args], capture_output=True,
                          text=True)


def test_gen_secret_default_length_and_alphabet():
    secrets = {twelve("gen.secret").stdout.strip() for _ in range(3)}
    assert len(secrets) == 3, "every secret is new"
    for secret in secrets:
        assert len(secret) == 64 and re.fullmatch(r"[A-Za-z0-9_-]+", secret)


@pytest.mark.parametrize("length", ["32", "100"])
def test_gen_secret_length(length):
    proc = twelve("gen.secret", length)
    assert proc.returncode == 0 and len(proc.stdout.strip()) == int(length)


def test_gen_secret_refuses_short_and_non_integer():
    short = twelve("gen.secret", "31")
    assert short.returncode == 2 and "too short; use at least 32" in short.stderr
    bad = twelve("gen.secret", "many")
    assert bad.returncode == 2 and "LENGTH must be an integer" in bad.stderr


def test_help_lists_commands():
    proc = twelve("--help")
    assert proc.returncode == 0 and "release" in proc.stdout and "gen.secret" in proc.stdout
    assert twelve().returncode == 2
