"""The FastAPI example (examples/hello_fastapi) as a prod release, built once for this module:
its lifespan opens an async SQLAlchemy pool, it serves a JSON API and a page with a digested
stylesheet, on uvicorn (its default server) — over SQLite by default and, with the very same
release, over PostgreSQL when DATABASE_URL says so. Other servers: the cross-example matrix."""
from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import Release, get
from twelve.runtime.process.pids import alive

pytestmark = pytest.mark.slow

NAME = "hello_fastapi"
MIGRATE = "hello_fastapi.release.migrate()"


@pytest.fixture(scope="module")
def fastapi_release(example_release) -> Path:
    return example_release(NAME)


@pytest.fixture
def release(fastapi_release, tmp_path):
    rel = Release(fastapi_release, tmp_path)
    rel.env["DATABASE_URL"] = f"sqlite:///{tmp_path}/state/{NAME}.db"
    yield rel
    rel.cleanup()


def post_json(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        return r.status, json.loads(r.read())


def get_json(url: str):
    status, body, _ = get(url)
    assert status == 200, body
    return json.loads(body)


def round_trip(rel: Release, name: str) -> None:
    """POST an item, then find it in GET /api/items (through the lifespan's pool)."""
    status, item = post_json(rel.url("/api/items"), {"name": name})
    assert status == 201 and item["name"] == name and isinstance(item["id"], int)
    assert item in get_json(rel.url("/api/items"))


def test_serves_page_static_and_api_over_sqlite(release):
    migrated = release("eval", MIGRATE, check=True)
    assert migrated.stdout.startswith("migrated sqlite+aiosqlite:///"), migrated.stdout
    pid = release.daemon()
    assert int(release("pid", check=True).stdout) == pid

    status, page, _ = get(release.url("/"))
    assert status == 200 and b"Hello from a twelve release" in page
    css = page.decode().split('rel="stylesheet" href="', 1)[1].split('"', 1)[0]
    assert css.startswith("/static/css/app-") and css.endswith(".css"), "a digested URL"
    status, _, headers = get(release.url(css))
    assert status == 200 and headers["content-type"].startswith("text/css")
    assert headers["cache-control"] == "public, max-age=31536000, immutable"

    assert get_json(release.url("/api/health")) == {"status": "ok", "database": "sqlite"}
    round_trip(release, "from sqlite")
    stop = release("stop")
    assert (stop.returncode, stop.stdout) == (0, "")
    assert not alive(pid)


def test_database_url_is_made_async_at_boot(release):
    show = 'from twelve import get_env; print(get_env("hello_fastapi", "database_url"))'
    cases = {
        "sqlite:////srv/state/x.db": "sqlite+aiosqlite:////srv/state/x.db",
        "postgresql://u:p@db:5432/app": "postgresql+asyncpg://u:p@db:5432/app",
        "postgres://u:p@db/app?sslmode=require": "postgresql+asyncpg://u:p@db/app?ssl=require",
        "postgresql+psycopg://u@db/app": "postgresql+psycopg://u@db/app",  # a driver: kept
    }
    for given, used in cases.items():
        assert release("eval", show, check=True, DATABASE_URL=given).stdout == used + "\n"


def test_unsupported_database_url_is_a_config_error(release):
    proc = release("start", DATABASE_URL="mysql://u:p@db/app")
    assert proc.returncode == 78
    assert "DATABASE_URL" in proc.stderr and "scheme 'mysql'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_env_declares_the_database_variables(release):
    listed = release("env", check=True).stdout
    for variable in ("DATABASE_URL", "DATABASE_POOL_SIZE", "STATE_DIRECTORY", "PORT"):
        assert variable in listed


def test_same_release_over_postgresql(release, postgres_server):
    """12-factor IV: the database is an attached resource — only DATABASE_URL changes."""
    release.env["DATABASE_URL"] = postgres_server.create_database(NAME)
    migrated = release("eval", MIGRATE, check=True).stdout
    assert migrated == (f"migrated postgresql+asyncpg://twelve:***@127.0.0.1:"
                        f"{postgres_server.port}/{NAME}\n")
    pid = release.daemon()
    assert get_json(release.url("/api/health")) == {"status": "ok", "database": "postgresql"}
    round_trip(release, "from postgresql")
    assert postgres_server.psql("SELECT name FROM items", database=NAME) == "from postgresql\n"
    assert connections(postgres_server) >= 1, "the lifespan's pool holds its connections"

    assert release("stop").returncode == 0
    assert not alive(pid)
    deadline = time.monotonic() + 5
    while connections(postgres_server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert connections(postgres_server) == 0, "the lifespan closed the pool at shutdown"


def connections(server) -> int:
    """Client connections to the example's database (not psql's own)."""
    return int(server.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{NAME}' "
                           "AND pid <> pg_backend_pid()", database="postgres"))
