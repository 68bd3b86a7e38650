"""Release tasks, run in a configured but not started system (no server, no lifespan):

    bin/hello_fastapi eval "hello_fastapi.release.migrate()"
"""
from __future__ import annotations

import asyncio

from hello_fastapi import db


def migrate() -> None:
    """Create the tables that do not exist yet (use Alembic once the schema evolves)."""
    asyncio.run(_migrate())


async def _migrate() -> None:
    engine = db.create_engine()
    try:
        await db.create_tables(engine)
    finally:
        await engine.dispose()
    print(f"migrated {engine.url.render_as_string(hide_password=True)}")
