"""The web app: an HTML page with its digested stylesheet and script, and a visit counter in
the database. Static files are served by WhiteNoise: digested names with far-future caching,
gzip/brotli siblings by content negotiation."""
from __future__ import annotations

import time
from pathlib import Path

from flask import Flask, jsonify, render_template, request

from hello import db
from twelve import get_env
from twelve.runtime import static

# `twelve digest` (the assets.deploy step) fingerprints this directory: tool.twelve.static_dir.
STATIC_DIR = Path(__file__).parent / "static"


def create_app() -> Flask:
    app = Flask(__name__, static_folder=None)  # WhiteNoise serves /static
    app.secret_key = get_env("hello", "secret_key_base")
    static.configure(STATIC_DIR, prefix="/static")
    app.jinja_env.globals.update(static_path=static.static_path,
                                 static_integrity=static.static_integrity)
    app.wsgi_app = static.whitenoise(app.wsgi_app, autorefresh=app.debug)

    @app.get("/")
    def index():
        return render_template("index.html", greeting=get_env("hello", "greeting", "Hello"))

    @app.get("/visits")
    def visits():
        return jsonify(visits=db.count_visit())

    @app.get("/slow")
    def slow():
        # Shows graceful draining: a stop or restart lets this finish (at most 5 s).
        seconds = min(float(request.args.get("seconds", 1)), 5.0)
        time.sleep(seconds)
        return jsonify(slept=seconds)

    return app
