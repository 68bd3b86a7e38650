"""Release tasks: `bin/reference eval "reference.release.migrate()"`."""
from __future__ import annotations

from reference import db


def migrate() -> None:
    db.create_tables()
    print(f"migrated {db.engine().url.render_as_string(hide_password=True)}")
