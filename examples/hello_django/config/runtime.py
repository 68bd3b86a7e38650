"""Runtime configuration: evaluated at every boot of the release (and in development), never
at build. Every variable the app reads is declared here; `bin/hello_django env` lists them.
hello_django/settings.py takes the values with twelve.get_env("hello_django", KEY)."""
from pathlib import Path

from twelve import config, config_env, env

# Where the SQLite database lives by default: a writable state directory, never inside the
# (possibly read-only) release. systemd's StateDirectory= sets STATE_DIRECTORY.
state_dir = env.path("STATE_DIRECTORY", default=Path.home() / ".local" / "state" / "hello_django",
                     help="writable directory for the default SQLite database")
config("hello_django",
       database_url=env.url("DATABASE_URL", default=f"sqlite:///{state_dir}/hello_django.sqlite3",
                            schemes=["sqlite", "postgresql", "postgres"],
                            example="postgresql://hello:secret@db.internal:5432/hello",
                            help="SQLite or PostgreSQL database URL"),
       allowed_hosts=env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"],
                              example="example.com,www.example.com",
                              help="host names this site serves (Django's ALLOWED_HOSTS)"),
       debug=env.bool("DEBUG", default=config_env() == "dev",
                      help="Django's DEBUG: tracebacks in pages; never true in production"))

if config_env() == "prod":
    config("hello_django",
           secret_key=env.secret("SECRET_KEY", min_length=50,
                                 help="Django's SECRET_KEY: signs sessions and tokens; "
                                      "generate with `twelve gen.secret`"))
else:
    config("hello_django", secret_key="dev-only-secret-key-" + "x" * 50)
