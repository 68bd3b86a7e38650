"""`/` (a page), `/visits` (a counter in SQLite) and `/static` (WhiteNoise)."""
from __future__ import annotations

from pathlib import Path

from flask import Flask, jsonify
from whitenoise import WhiteNoise

from reference import db
from twelve import get_env

STATIC_DIR = Path(__file__).parent / "static"
PAGE = ('<!doctype html><html><head><link rel="stylesheet" href="/static/app.css"></head>'
        '<body><h1>{greeting}</h1></body></html>')


def create_app() -> Flask:
    app = Flask(__name__, static_folder=None)
    app.secret_key = get_env("reference", "secret_key_base")
    app.wsgi_app = WhiteNoise(app.wsgi_app, root=STATIC_DIR, prefix="/static")

    @app.get("/")
    def index():
        return PAGE.format(greeting=get_env("reference", "greeting", "Hello"))

    @app.get("/visits")
    def visits():
        return jsonify(visits=db.count_visit())

    return app
