"""One engine per process, from the runtime config's DATABASE_URL (SQLite)."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select, update
from sqlalchemy.engine import Engine, make_url

from twelve import get_env

metadata = MetaData()
counters = Table("counters", metadata,
                 Column("name", String(32), primary_key=True),
                 Column("value", Integer, nullable=False))
_engine: Engine | None = None


def engine() -> Engine:
    global _engine
    if _engine is None:
        url = make_url(get_env("reference", "database_url"))
        if url.database not in (None, "", ":memory:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        _engine = create_engine(url)
    return _engine


def create_tables() -> None:
    metadata.create_all(engine())
    with engine().begin() as conn:
        if conn.execute(select(counters.c.value)
                        .where(counters.c.name == "visits")).first() is None:
            conn.execute(counters.insert().values(name="visits", value=0))


def count_visit() -> int:
    with engine().begin() as conn:
        conn.execute(update(counters).where(counters.c.name == "visits")
                     .values(value=counters.c.value + 1))
        return conn.execute(select(counters.c.value)
                            .where(counters.c.name == "visits")).scalar_one()
