"""The web app: a JSON API over an async SQLAlchemy engine opened by the lifespan, and an HTML
page with its digested stylesheet. ``app`` (what twelve serves, tool.twelve.app) is the FastAPI
app ``api`` wrapped by ServeStatic, which serves /static with far-future caching for digested
names and gzip/brotli siblings by content negotiation."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hello_fastapi import db
from twelve import config_env, get_env
from twelve.runtime import static

PACKAGE = Path(__file__).parent
# `twelve digest` (the assets.deploy step) fingerprints this directory: tool.twelve.static_dir.
STATIC_DIR = PACKAGE / "static"


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    """One engine — one connection pool — per server process, closed when the server stops
    (after in-flight requests have drained)."""
    engine = db.create_engine()
    api.state.engine = engine
    api.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        yield
    finally:
        await engine.dispose()


async def session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as s:
        yield s


Session = Annotated[AsyncSession, Depends(session)]


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str


def create_api() -> FastAPI:
    api = FastAPI(title="hello_fastapi", lifespan=lifespan)
    templates = Jinja2Templates(directory=PACKAGE / "templates")
    templates.env.globals.update(static_path=static.static_path,
                                 static_integrity=static.static_integrity)

    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(request: Request):
        greeting = get_env("hello_fastapi", "greeting", "Hello")
        return templates.TemplateResponse(request, "index.html", {"greeting": greeting})

    @api.get("/api/health")
    async def health(request: Request) -> dict:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return {"status": "ok", "database": request.app.state.engine.dialect.name}

    @api.get("/api/items")
    async def list_items(s: Session) -> list[ItemOut]:
        return [ItemOut.model_validate(item) for item in await db.list_items(s)]

    @api.post("/api/items", status_code=201)
    async def add_item(item: ItemIn, s: Session) -> ItemOut:
        return ItemOut.model_validate(await db.add_item(s, item.name))

    @api.get("/slow")
    async def slow(seconds: float = 1.0) -> dict:
        # Shows graceful draining: a stop or restart lets this finish (at most 5 s).
        seconds = min(seconds, 5.0)
        await asyncio.sleep(seconds)
        return {"slept": seconds}

    return api


api = create_api()
static.configure(STATIC_DIR, prefix="/static")
app = static.servestatic(api, autorefresh=config_env() != "prod")
