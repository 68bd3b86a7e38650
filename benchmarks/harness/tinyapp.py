"""A tiny app with the example's shape, for the smoke test (``bench.py --app tiny``): a WSGI
factory served by gunicorn, ``/`` and ``/visits`` (a counter in SQLite, stdlib only), a
``migrate()`` release task and a runtime config that needs SECRET_KEY_BASE in prod. Its one
dependency is gunicorn, so building it takes seconds."""
from __future__ import annotations

from pathlib import Path

from harness.workspace import App

FILES = {
    "pyproject.toml": '''\
[build-system]
requires = ["hatchling>=1.24"]
build-backend = "hatchling.build"

[project]
name = "tiny"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["gunicorn>=25"]

[tool.hatch.build.targets.wheel]
packages = ["src/tiny"]

[tool.twelve]
app = "tiny.web:create_app()"
server = "gunicorn"
steps = ["assemble"]
''',
    "config/runtime.py": '''\
from twelve import config, config_env, env

config("tiny", database=env.str("DATABASE_URL", default="sqlite:///tiny.db",
                                help="sqlite:///PATH"))
if config_env() == "prod":
    config("tiny", secret=env.secret("SECRET_KEY_BASE", min_length=64, help="signs nothing"))
''',
    "src/tiny/__init__.py": "",
    "src/tiny/db.py": '''\
import sqlite3

from twelve import get_env


def connect():
    return sqlite3.connect(get_env("tiny", "database").removeprefix("sqlite:///"))


def migrate():
    with connect() as db:
        db.execute("CREATE TABLE IF NOT EXISTS visits (n INTEGER)")
        if db.execute("SELECT count(*) FROM visits").fetchone()[0] == 0:
            db.execute("INSERT INTO visits VALUES (0)")
''',
    "src/tiny/release.py": '''\
from tiny import db


def migrate():
    db.migrate()
    print("migrated")
''',
    "src/tiny/web.py": '''\
import json

from tiny import db

PAGE = b"<!doctype html><title>tiny</title><h1>Hello</h1>"


def create_app():
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/visits":
            with db.connect() as conn:
                conn.execute("UPDATE visits SET n = n + 1")
                n = conn.execute("SELECT n FROM visits").fetchone()[0]
            body, kind = json.dumps({"visits": n}).encode(), "application/json"
        elif environ["PATH_INFO"] == "/":
            body, kind = PAGE, "text/html"
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(body)))])
        return [body]

    return app
''',
}


def write_tiny_app(dest: Path) -> App:
    for name, text in FILES.items():
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return App("tiny", dest, "tiny.web:create_app()", "tiny.release.migrate()",
               "src/tiny/web.py", assets=False)
