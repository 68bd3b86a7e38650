"""Runtime configuration: evaluated at every boot of the release (and in development),
never at build. Every variable the app reads is declared here; `bin/hello env` lists them."""
from pathlib import Path

from twelve import config, config_env, env

# Where the SQLite database lives by default: a writable state directory, never inside the
# (possibly read-only) release. systemd's StateDirectory= sets STATE_DIRECTORY.
state_dir = env.path("STATE_DIRECTORY", default=Path.home() / ".local" / "state" / "hello",
                     help="writable directory for the default SQLite database")
database_url = env.url("DATABASE_URL", default=f"sqlite:///{state_dir}/hello.db",
                       help="SQLAlchemy database URL (sqlite:///… or postgresql://…)")
# SQLAlchemy reads postgresql:// as psycopg2; the release ships psycopg (3), so name it.
# Heroku-style postgres:// is the same. A URL that already names a driver is kept as it is.
for scheme in ("postgresql://", "postgres://"):
    if database_url.startswith(scheme):
        database_url = "postgresql+psycopg://" + database_url.removeprefix(scheme)
config("hello", database_url=database_url)

if config_env() == "prod":
    config("hello",
           secret_key_base=env.secret("SECRET_KEY_BASE", min_length=64,
                                      help="signs sessions; generate with `twelve gen.secret`"))
    config("twelve", port=env.int("PORT", default=4000, min=1, max=65535, help="HTTP port"))
else:
    config("hello", secret_key_base="dev-only-secret-key-base-" + "x" * 40)
