"""The web app: an HTML page with a stylesheet, and a visit counter in the database."""
from __future__ import annotations

from flask import Flask, jsonify, render_template

from hello import db
from twelve import get_env


def create_app() -> Flask:
    app = Flask(__name__)
    app.secret_key = get_env("hello", "secret_key_base")

    @app.get("/")
    def index():
        return render_template("index.html", greeting=get_env("hello", "greeting", "Hello"))

    @app.get("/visits")
    def visits():
        return jsonify(visits=db.count_visit())

    return app
