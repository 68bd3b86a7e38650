"""twelve.runtime.static: static_path through the manifest, and serving with WhiteNoise (WSGI),
ServeStatic (ASGI, Starlette) and Django's WhiteNoise middleware, exactly as docs/assets.md
shows them."""
from __future__ import annotations

import asyncio
import gzip
import io
import json
import subprocess
import sys
import textwrap

import pytest

from twelve.assets.digest import digest_directory
from twelve.runtime.config import store as runtime_config
from twelve.runtime import static
from twelve.runtime.errors import BootError

IMMUTABLE = "public, max-age=31536000, immutable"
CSS = b"h1 { color: #4b2c83; background: url(../images/logo.svg); }\n" * 20


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    monkeypatch.setattr(static, "_static", None)
    monkeypatch.setattr(static, "_warned", set())


@pytest.fixture
def env(monkeypatch):
    """Pretend the process was booted for an environment, as a release is."""
    def set_env(name):
        monkeypatch.setattr(runtime_config, "_installed_env", name)
    return set_env


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "static"
    (root / "css").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "css/app.css").write_bytes(CSS)
    (root / "images/logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    digest_directory(root)
    return root


def latest(root):
    return json.loads((root / "cache_manifest.json").read_text())["latest"]


def test_importing_the_runtime_module_imports_nothing_outside_the_standard_library():
    code = ("import sys; before = set(sys.modules); import twelve.runtime.static; "
            "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
            "print(sorted(new - set(sys.stdlib_module_names) - {'twelve'}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_static_path_uses_the_manifest_in_prod(site, env):
    env("prod")
    static.configure(site, prefix="/static")
    css = latest(site)["css/app.css"]
    assert static.static_path("css/app.css") == f"/static/{css}"
    assert static.static_path("/css/app.css?x=1#top") == f"/static/{css}?x=1#top"
    assert static.static_path("unknown.txt") == "/static/unknown.txt"
    assert static.static_integrity("css/app.css").startswith("sha512-")
    assert static.static_integrity("unknown.txt") is None


def test_dev_links_logical_paths_even_with_a_manifest(site, env):
    env("dev")
    static.configure(site, prefix="/assets/")
    assert static.static_path("css/app.css") == "/assets/css/app.css"
    assert static.static_integrity("css/app.css") is None
    forced = static.configure(site, manifest=True)
    assert forced.path("css/app.css") == "/static/" + latest(site)["css/app.css"]
    assert static.configure(site, prefix="").path("css/app.css") == "/css/app.css"


def test_the_manifest_is_read_once(site, env):
    env("prod")
    static.configure(site)
    first = static.static_path("css/app.css")
    (site / "cache_manifest.json").write_text('{"version": 1, "latest": {}, "digests": {}}')
    assert static.static_path("css/app.css") == first


def test_a_missing_manifest_in_prod_warns_once_with_the_fix(tmp_path, env, capsys):
    env("prod")
    static.configure(tmp_path)
    assert static.static_path("css/app.css") == "/static/css/app.css"
    static.static_path("js/app.js")
    static.configure(tmp_path).path("css/app.css")
    err = capsys.readouterr().err
    assert err.count("warning:") == 1
    assert f"no cache_manifest.json in {tmp_path}" in err
    assert "run `twelve digest`" in err and "assets.deploy" in err


def test_a_broken_manifest_warns_and_falls_back(tmp_path, env, capsys):
    env("prod")
    (tmp_path / "cache_manifest.json").write_text("{nope")
    assert static.configure(tmp_path).path("a.css") == "/static/a.css"
    assert "cannot be read" in capsys.readouterr().err


def test_static_path_before_configure_names_the_fix():
    with pytest.raises(BootError, match=r"static_path\(\) needs the static directory: call "
                                        r"twelve.runtime.static.configure"):
        static.static_path("css/app.css")


def test_immutable_test_and_headers():
    assert static.is_digested("/x/app-0123456789abcdef0123456789abcdef.css", "")
    assert static.is_digested("", "/static/app.js-0123456789abcdef0123456789abcdef.map")
    assert not static.is_digested("/x/app.css", "/static/app.css")
    headers = {}
    static.add_cache_headers(headers, "/x/app.css", "/static/app.css")
    assert headers == {}
    static.add_cache_headers(headers, "", "/static/logo-0123456789abcdef0123456789abcdef.svg")
    assert headers == {"Cache-Control": IMMUTABLE}


# --- WSGI: WhiteNoise -----------------------------------------------------------------------

def wsgi_get(app, path, accept=""):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
               "HTTP_ACCEPT_ENCODING": accept, "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1"}
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    return int(seen["status"].split()[0]), seen["headers"], body


def fallback_wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"from the app"]


def test_whitenoise_serves_digests_forever_and_negotiates_encodings(site, env):
    env("prod")
    static.configure(site)
    app = static.whitenoise(fallback_wsgi)
    url = static.static_path("css/app.css")
    status, headers, body = wsgi_get(app, url, "gzip, deflate, br")
    assert status == 200 and headers["Cache-Control"] == IMMUTABLE
    assert headers["Content-Encoding"] == "br" and headers["Vary"] == "Accept-Encoding"
    digested = (site / latest(site)["css/app.css"]).read_bytes()
    status, headers, body = wsgi_get(app, url, "gzip")
    assert headers["Content-Encoding"] == "gzip" and gzip.decompress(body) == digested
    status, headers, body = wsgi_get(app, url)
    assert "Content-Encoding" not in headers and body == digested
    status, headers, _ = wsgi_get(app, "/static/css/app.css")
    assert status == 200 and headers["Cache-Control"] == "max-age=60, public"
    assert wsgi_get(app, "/visits")[2] == b"from the app"


def test_a_missing_serving_library_is_named(site, monkeypatch):
    static.configure(site)
    monkeypatch.setitem(sys.modules, "whitenoise", None)
    with pytest.raises(BootError, match=r"whitenoise\(\) serves static files with whitenoise, "
                                        r"which is not installed: add \"whitenoise>=6\""):
        static.whitenoise(fallback_wsgi)


# --- ASGI: ServeStatic, alone and around Starlette --------------------------------------------

def asgi_get(app, path, accept=""):
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "server": ("127.0.0.1", 80),
             "client": ("127.0.0.1", 5000),
             "headers": [(b"host", b"127.0.0.1"), (b"accept-encoding", accept.encode())]}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent
                                             if m["type"] == "http.response.body")


def test_servestatic_serves_digests_forever_and_negotiates_encodings(site, env):
    pytest.importorskip("servestatic")

    async def fallback(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"from the app"})

    env("prod")
    static.configure(site)
    app = static.servestatic(fallback)
    url = static.static_path("css/app.css")
    status, headers, _ = asgi_get(app, url, "gzip, br")
    assert status == 200 and headers["cache-control"] == IMMUTABLE
    assert headers["content-encoding"] == "br"
    status, headers, body = asgi_get(app, url, "gzip")
    digested = (site / latest(site)["css/app.css"]).read_bytes()
    assert headers["content-encoding"] == "gzip" and gzip.decompress(body) == digested
    assert asgi_get(app, "/static/css/app.css")[1]["cache-control"] == "max-age=60, public"
    assert asgi_get(app, "/api")[2] == b"from the app"


def test_starlette_glue_from_the_docs(site, env):
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def index(request):
        return HTMLResponse(f'<link rel="stylesheet" href="{static.static_path("css/app.css")}">')

    env("prod")
    static.configure(site, prefix="/static")
    app = static.servestatic(Starlette(routes=[Route("/", index)]))
    page = asgi_get(app, "/")[2].decode()
    url = "/static/" + latest(site)["css/app.css"]
    assert url in page
    assert asgi_get(app, url, "gzip")[1]["cache-control"] == IMMUTABLE


# --- Django: WhiteNoise's middleware with twelve's tests and a storage using static_path -------

DJANGO_SCRIPT = """
import io, json, sys
import django
from django.conf import settings
from twelve.runtime import static

STATIC_ROOT = sys.argv[1]
static.configure(STATIC_ROOT, prefix="/static/", manifest=True)
settings.configure(
    DEBUG=False, SECRET_KEY="x" * 50, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.staticfiles"],
    MIDDLEWARE=["whitenoise.middleware.WhiteNoiseMiddleware"],
    STATIC_URL="/static/", STATIC_ROOT=STATIC_ROOT,
    WHITENOISE_IMMUTABLE_FILE_TEST=static.is_digested,
    WHITENOISE_ADD_HEADERS_FUNCTION=static.add_cache_headers,
    STORAGES={"staticfiles": {"BACKEND": "__main__.DigestedStaticFiles"}},
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
)
from django.contrib.staticfiles.storage import StaticFilesStorage

class DigestedStaticFiles(StaticFilesStorage):
    def url(self, name):
        return static.static_path(name)

urlpatterns = []
django.setup()
from django.core.handlers.wsgi import WSGIHandler
from django.template import engines

url = engines["django"].from_string("{% load static %}{% static 'css/app.css' %}").render()
environ = {"REQUEST_METHOD": "GET", "PATH_INFO": url, "SERVER_NAME": "localhost",
           "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
           "HTTP_ACCEPT_ENCODING": "gzip", "QUERY_STRING": ""}
seen = {}
body = b"".join(WSGIHandler()(environ, lambda s, h, e=None: seen.update(status=s, headers=dict(h))))
print(json.dumps({"url": url, "status": seen["status"], "headers": seen["headers"]}))
"""


def test_django_glue_from_the_docs(site, tmp_path):
    pytest.importorskip("django")
    pytest.importorskip("whitenoise")
    script = tmp_path / "django_site.py"
    script.write_text(textwrap.dedent(DJANGO_SCRIPT))
    proc = subprocess.run([sys.executable, str(script), str(site)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["url"] == "/static/" + latest(site)["css/app.css"]
    assert seen["status"].startswith("200")
    assert seen["headers"]["Cache-Control"] == IMMUTABLE
    assert seen["headers"]["Content-Encoding"] == "gzip"
