"""Runtime configuration: evaluated at every boot of the release (and in development), never
at build. Every variable the app reads is declared here; `bin/hello_fastapi env` lists them.

DATABASE_URL is written the way every platform hands it out (sqlite:///…, postgresql://… or
postgres://…); the app's engine is async, so the URL is turned into SQLAlchemy's async form
here, once: sqlite → sqlite+aiosqlite, postgresql/postgres → postgresql+asyncpg (with libpq's
sslmode= spelled ssl= for asyncpg). A URL that already names a driver is kept as it is.
"""
from pathlib import Path

from twelve import config, config_env, env

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
                 "postgres": "postgresql+asyncpg"}


def async_database_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    if scheme not in ASYNC_DRIVERS:
        return url                                 # a driver is named already: as it is
    if ASYNC_DRIVERS[scheme] == "postgresql+asyncpg":
        rest = rest.replace("?sslmode=", "?ssl=").replace("&sslmode=", "&ssl=")
    return f"{ASYNC_DRIVERS[scheme]}://{rest}"


# Where the SQLite database lives by default: a writable state directory, never inside the
# (possibly read-only) release. systemd's StateDirectory= sets STATE_DIRECTORY.
state_dir = env.path("STATE_DIRECTORY", default=Path.home() / ".local" / "state" / "hello_fastapi",
                     help="writable directory for the default SQLite database")
database_url = env.url("DATABASE_URL", default=f"sqlite:///{state_dir}/hello_fastapi.db",
                       schemes=["sqlite", "postgresql", "postgres"],
                       example="postgresql://hello:secret@db.internal:5432/hello",
                       help="SQLite or PostgreSQL database URL")
config("hello_fastapi",
       database_url=async_database_url(database_url),
       pool_size=env.int("DATABASE_POOL_SIZE", default=5, min=1, max=100,
                         help="connections each server process keeps open"))

if config_env() == "prod":
    config("twelve", port=env.int("PORT", default=4000, min=1, max=65535, help="HTTP port"))
