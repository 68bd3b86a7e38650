"""Server adapters: one small interface in front of each HTTP server, run in-process so the
node owns readiness, signals and shutdown. Adapters live in their own modules and import their
server lazily; only the one a release uses is ever imported.

An adapter has ``name``, ``interfaces`` (of "wsgi", "asgi"), ``multiprocess`` (True when the
server runs several worker processes itself) and ``serve(app, kind, settings, sock, hooks)``,
which serves on the node's listening socket (a dup of it) until a signal stops it. Every adapter
behaves the same, because each asks ``hooks.on_signal`` (twelve.runtime.lifecycle.Drain) what a
signal means: SIGTERM and SIGINT drain in-flight requests, bounded by
``settings.graceful_timeout``, and a second one forces; SIGHUP drains and returns with
``hooks.restart`` set, leaving the node's socket open so connections queue meanwhile; a stop
during that drain clears ``hooks.restart`` and the drain goes on. For
servers that run one process, ``run`` forks ``settings.workers`` of them (twelve.runtime.process.prefork).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from twelve.runtime.config.server import BOOT_TIMEOUT, WORKER_TIMEOUT
from twelve.runtime.errors import BootError
from twelve.runtime.process.lifecycle import DRAIN, FORCE, IGNORE, Drain  # noqa: F401 (for adapters)

GRACEFUL_TIMEOUT = 30  # seconds a stop waits for in-flight requests (default)

# server name → (module of twelve.runtime.servers, the distribution to depend on)
SERVERS = {
    "gunicorn": ("gunicorn", "gunicorn"),
    "uvicorn": ("uvicorn", "uvicorn"),
    "granian": ("granian", "granian"),
    "hypercorn": ("hypercorn", "hypercorn"),
    "waitress": ("waitress", "waitress"),
}

LOGGING = {
    # Everything on stdout (12-factor XI): the server's errors and the app's own logs alike.
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"generic": {"format": "%(asctime)s [%(process)d] [%(levelname)s] "
                                         "%(name)s: %(message)s"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "generic",
                            "stream": "ext://sys.stdout"}},
    "root": {"level": "INFO", "handlers": ["stdout"]},
}


def logging_config(*loggers: str) -> dict:
    """LOGGING with the given server loggers sent to stdout, once (no propagation)."""
    named = {name: {"level": "INFO", "handlers": ["stdout"], "propagate": False}
             for name in loggers}
    return dict(LOGGING, loggers=named)


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    workers: int
    graceful_timeout: float
    app_ref: str
    proc_name: str
    access_log: bool = False
    boot_timeout: float = BOOT_TIMEOUT
    worker_timeout: float = WORKER_TIMEOUT

    @classmethod
    def from_config(cls, twelve_config: dict, release, app_ref: str) -> "Settings":
        return cls(host=twelve_config["host"], port=int(twelve_config["port"]),
                   workers=int(twelve_config["web_concurrency"]),
                   graceful_timeout=float(twelve_config.get("graceful_timeout",
                                                            GRACEFUL_TIMEOUT)),
                   app_ref=app_ref, proc_name=release.name,
                   access_log=bool(twelve_config.get("access_log", False)),
                   boot_timeout=float(twelve_config.get("boot_timeout", BOOT_TIMEOUT)),
                   worker_timeout=float(twelve_config.get("worker_timeout", WORKER_TIMEOUT)))

    @property
    def bind(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class Hooks(Drain):
    """What an adapter tells the node: ready (listening), stopping, and after a fork; and the
    drain state its signal handlers share (``on_signal``, ``restart``)."""

    def __init__(self, ready, stopping, after_fork) -> None:
        super().__init__(stopping)
        self.ready, self.after_fork = ready, after_fork


def get(name: str):
    try:
        module, _ = SERVERS[name]
    except KeyError:
        raise BootError(f"unknown server {name!r} in release.json; known: "
                        f"{', '.join(SERVERS)}") from None
    return importlib.import_module(f"twelve.runtime.servers.{module}").ADAPTER


def run(server, app, kind: str, settings: Settings, sock, hooks: Hooks) -> None:
    """Serve until stopped: the server's own workers, or twelve's prefork of single ones."""
    if server.multiprocess or settings.workers <= 1:
        server.serve(app, kind, settings, sock, hooks)
        return
    from twelve.runtime.process import prefork

    prefork.Supervisor(settings, hooks,
                       lambda worker_hooks: server.serve(app, kind, settings, sock,
                                                         worker_hooks)).run()


def interface_of(app) -> str:
    """"asgi" for an async callable of (scope, receive, send), else "wsgi"."""
    import inspect

    call = app if inspect.isroutine(app) else getattr(type(app), "__call__", None)
    if call is None:
        raise BootError(f"the app {app!r} is not callable")
    if inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
            getattr(call, "__func__", None)):
        return "asgi"
    return "wsgi"


def check_interface(server, app, ref: str) -> str:
    kind = interface_of(app)
    if kind not in server.interfaces:
        others = [n for n in SERVERS if n != server.name and kind in get(n).interfaces]
        raise BootError(f"{ref} is a {kind.upper()} app but the server {server.name} serves "
                        f"{' and '.join(i.upper() for i in server.interfaces)} only",
                        hint=f"Set tool.twelve.server to one of {', '.join(others)} (and depend "
                             "on it).")
    return kind

