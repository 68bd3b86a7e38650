"""The database: the table, and an async engine (with its connection pool) made from the
runtime config's DATABASE_URL — already in SQLAlchemy's async form (config/runtime.py)."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import String, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from twelve import get_env


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


def create_engine() -> AsyncEngine:
    """A new engine; each process opens its own (the app in its lifespan, migrate() in eval)."""
    url = make_url(get_env("hello_fastapi", "database_url"))
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    return create_async_engine(url, pool_size=int(get_env("hello_fastapi", "pool_size", 5)),
                               pool_pre_ping=True)


async def create_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


async def add_item(session: AsyncSession, name: str) -> Item:
    item = Item(name=name)
    session.add(item)
    await session.commit()
    return item


async def list_items(session: AsyncSession) -> list[Item]:
    return list(await session.scalars(select(Item).order_by(Item.id)))
