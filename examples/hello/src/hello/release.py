"""Release tasks, run with `bin/hello eval "hello.release.migrate()"` (no server started)."""
from __future__ import annotations

from hello import db


def migrate() -> None:
    db.create_tables()
    print(f"migrated {db.engine().url.render_as_string(hide_password=True)}")
