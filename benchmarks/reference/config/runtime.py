"""Runtime configuration, evaluated at every boot."""
from pathlib import Path

from twelve import config, config_env, env

state_dir = env.path("STATE_DIRECTORY", default=Path.home() / ".local" / "state" / "reference",
                     help="writable directory for the SQLite database")
config("reference", database_url=env.url("DATABASE_URL",
                                         default=f"sqlite:///{state_dir}/reference.db",
                                         help="SQLAlchemy database URL (sqlite:///…)"))
if config_env() == "prod":
    config("reference", secret_key_base=env.secret("SECRET_KEY_BASE", min_length=64,
                                                   help="signs sessions"))
    config("twelve", port=env.int("PORT", default=4000, min=1, max=65535, help="HTTP port"))
else:
    config("reference", secret_key_base="dev-only-secret-key-base-" + "x" * 40)
