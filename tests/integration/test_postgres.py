"""12-factor IV, the database as an attached resource: each example's release — the same build
that runs over SQLite — migrates, writes and reads over PostgreSQL when only DATABASE_URL
changes. The server is tests/postgres.py's throw-away one. The FastAPI and Django examples'
runs are next to the release their own module builds: test_fastapi.py and test_django.py
(test_same_release_over_postgresql in each)."""
from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest

from conftest import Release, get

pytestmark = pytest.mark.slow


def test_throwaway_server_is_local_and_password_protected(postgres_server, postgres):
    assert postgres.startswith("postgresql://twelve:") and "@127.0.0.1:" in postgres
    show = postgres_server.psql("SHOW listen_addresses; SHOW fsync; SHOW port")
    assert show.split() == ["127.0.0.1", "off", str(postgres_server.port)]
    owner = Path(postgres_server.data).stat().st_uid
    assert owner != 0, "PostgreSQL never runs as root"
    if os.geteuid() != 0:
        assert owner == os.geteuid()
    else:
        assert pwd.getpwuid(owner).pw_name in ("postgres", "nobody")
    hba = (postgres_server.data / "pg_hba.conf").read_text()
    assert "host    all             all             127.0.0.1/32            scram-sha-256" in hba


def visit_twice_and_read_back(rel: Release, server, database: str, table: str) -> None:
    """Write through the app (each GET /visits increments a counter row), read it back through
    the app and straight from PostgreSQL."""
    assert json.loads(get(rel.url("/visits"))[1]) == {"visits": 1}
    assert json.loads(get(rel.url("/visits"))[1]) == {"visits": 2}
    assert server.psql(f"SELECT value FROM {table} WHERE name = 'visits'",
                       database=database) == "2\n"


def test_flask_example_over_postgresql(hello_release, tmp_path, postgres_server):
    rel = Release(hello_release, tmp_path)
    rel.env["DATABASE_URL"] = postgres_server.create_database("hello")
    try:
        migrated = rel("eval", "hello.release.migrate()", check=True).stdout
        assert migrated == (f"migrated postgresql+psycopg://twelve:***@127.0.0.1:"
                            f"{postgres_server.port}/hello\n")
        rel.daemon()
        visit_twice_and_read_back(rel, postgres_server, "hello", "counters")
        assert rel("stop").returncode == 0
    finally:
        rel.cleanup()
