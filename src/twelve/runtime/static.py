"""Static files at run time: logical paths to digested URLs, and the glue that serves them.

    from twelve.runtime import static
    static.configure(Path(__file__).parent / "static", prefix="/static")   # once, at app creation
    static.static_path("css/app.css")   # → "/static/css/app-<md5>.css"
    app.wsgi_app = static.whitenoise(app.wsgi_app)          # WSGI (Flask, Django's WSGI app...)
    app = static.servestatic(app)                           # ASGI (Starlette, FastAPI...)

``static_path`` reads ``cache_manifest.json`` (written by ``twelve digest``) from the configured
directory once, the first time it is needed. In prod (``config_env() == "prod"``) the digested
name is used; in every other environment the logical path is, so a manifest left over from a
deploy build never serves stale assets in development (``configure(..., manifest=True)``
forces the manifest). A prod process without a manifest prints one warning naming the fix and
serves the logical paths.

The glue serves the directory with far-future caching (``Cache-Control: public,
max-age=31536000, immutable``) for digested names only, and content negotiation of the
``.br``/``.gz`` siblings. Standard library only and import-light: WhiteNoise and ServeStatic
are the application's dependencies, imported when their glue function is called.
"""
from __future__ import annotations

import json
import os
import re
import sys
import threading

from twelve.runtime.errors import BootError

MANIFEST_NAME = "cache_manifest.json"
IMMUTABLE = "public, max-age=31536000, immutable"
DEFAULT_PREFIX = "/static"
# What `twelve digest` (and phx.digest) names a digested file: name-<md5>.ext
DIGESTED_NAME = re.compile(r"-[0-9a-f]{32}(\.[^./]*)?$")

NOT_CONFIGURED = ("{caller} needs the static directory: call "
                  "twelve.runtime.static.configure(DIRECTORY, prefix=\"/static\") once where the "
                  "app is created")
NO_MANIFEST = ("warning: no {name} in {directory}: static files are linked by their undigested "
               "names, without far-future caching. Fix: run `twelve digest` on the static "
               "directory before building the release (e.g. steps = [\"assets.deploy\", "
               "\"assemble\"] in [tool.twelve]); see docs/assets.md.")
BAD_MANIFEST = ("warning: {path} cannot be read ({why}): static files are linked by their "
                "undigested names. Fix: run `twelve digest` again; see docs/assets.md.")
MISSING_LIBRARY = ("{function}() serves static files with {package}, which is not installed: "
                   "add \"{requirement}\" to [project].dependencies")


class Static:
    """One static directory served at one URL prefix, and its manifest (read once)."""

    def __init__(self, directory, prefix: str = DEFAULT_PREFIX,
                 manifest: bool | None = None) -> None:
        self.directory = os.path.abspath(os.fspath(directory))
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self._use_manifest = manifest
        self._lock = threading.Lock()
        self._latest: dict | None = None
        self._digests: dict = {}

    def path(self, logical: str) -> str:
        """The URL of ``logical`` ("css/app.css", query and fragment kept)."""
        path, suffix = _split(logical)
        path = path.lstrip("/")
        return f"{self.prefix}/{self.latest().get(path, path)}{suffix}"

    def integrity(self, logical: str) -> str | None:
        """``sha512-…`` of the digested file, for an ``integrity=`` attribute; None without
        a manifest entry."""
        entry = self._entry(_split(logical)[0].lstrip("/"))
        return f"sha512-{entry['sha512']}" if entry and entry.get("sha512") else None

    def latest(self) -> dict:
        if self._latest is None:
            with self._lock:
                if self._latest is None:
                    self._load()
        return self._latest

    def _entry(self, logical: str) -> dict | None:
        digested = self.latest().get(logical)
        return self._digests.get(digested) if digested else None

    def _load(self) -> None:
        use = self._use_manifest
        if use is None:
            from twelve.runtime.config.store import config_env
            use = config_env() == "prod"
        latest, digests = {}, {}
        if use:
            path = os.path.join(self.directory, MANIFEST_NAME)
            try:
                with open(path, "rb") as file:
                    data = json.load(file)
                latest, digests = dict(data["latest"]), dict(data.get("digests", {}))
            except FileNotFoundError:
                _warn(NO_MANIFEST.format(name=MANIFEST_NAME, directory=self.directory))
            except (OSError, ValueError, KeyError, TypeError) as e:
                _warn(BAD_MANIFEST.format(path=path, why=e))
        self._digests = digests
        self._latest = latest


_static: Static | None = None


def configure(directory, *, prefix: str = DEFAULT_PREFIX, manifest: bool | None = None) -> Static:
    """Set the static directory of this process (and the URL it is served at); return it.
    ``manifest``: True or False to use cache_manifest.json or not; None (default): in prod."""
    global _static
    _static = Static(directory, prefix, manifest)
    return _static


def static_path(path: str) -> str:
    """The URL to link ``path`` (relative to the static directory) with."""
    return _configured("static_path()").path(path)


def static_integrity(path: str) -> str | None:
    """Subresource Integrity value of ``path``'s digested file (``sha512-…``), or None."""
    return _configured("static_integrity()").integrity(path)


def is_digested(path: str, url: str = "") -> bool:
    """Whether a file name is a digested one (WhiteNoise's and ServeStatic's
    ``immutable_file_test``; Django: ``WHITENOISE_IMMUTABLE_FILE_TEST``)."""
    return bool(DIGESTED_NAME.search(os.path.basename(url or path)))


def add_cache_headers(headers, path: str, url: str) -> None:
    """Far-future, immutable caching for digested files (``add_headers_function``; Django:
    ``WHITENOISE_ADD_HEADERS_FUNCTION``); other files keep the library's short max-age."""
    if is_digested(path, url):
        headers["Cache-Control"] = IMMUTABLE


def whitenoise(app, **options):
    """``app`` (WSGI) wrapped by WhiteNoise serving the configured directory at its prefix."""
    WhiteNoise = _import("whitenoise", "WhiteNoise", "whitenoise", "whitenoise>=6")
    return WhiteNoise(app, **_options(_configured("whitenoise()"), options))


def servestatic(app, **options):
    """``app`` (ASGI) wrapped by ServeStatic serving the configured directory at its prefix."""
    ServeStaticASGI = _import("servestatic", "ServeStaticASGI", "servestatic",
                              "servestatic>=3")
    return ServeStaticASGI(app, **_options(_configured("servestatic()"), options))


def _options(static: Static, options: dict) -> dict:
    options.setdefault("root", static.directory)
    options.setdefault("prefix", static.prefix + "/")
    options.setdefault("immutable_file_test", is_digested)
    options.setdefault("add_headers_function", add_cache_headers)
    return options


def _configured(caller: str) -> Static:
    if _static is None:
        raise BootError(NOT_CONFIGURED.format(caller=caller))
    return _static


def _import(module: str, name: str, function: str, requirement: str):
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        raise BootError(MISSING_LIBRARY.format(function=function, package=module,
                                               requirement=requirement)) from None


def _split(logical: str) -> tuple[str, str]:
    cut = min((i for i in (logical.find("?"), logical.find("#")) if i >= 0),
              default=len(logical))
    return logical[:cut], logical[cut:]


_warned: set[str] = set()


def _warn(message: str) -> None:
    """Once per process and message, on stderr (the server's log)."""
    if message not in _warned:
        _warned.add(message)
        print(message, file=sys.stderr, flush=True)
