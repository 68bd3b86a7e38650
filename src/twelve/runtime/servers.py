"""Server adapters: one small interface in front of each HTTP server, run in-process so the
node owns readiness, signals and shutdown. Each adapter imports its server lazily.

Interface: ``name``, ``interface`` ("wsgi" or "asgi") and ``serve(app, settings, sock, hooks)``,
which serves on the node's listening socket (a dup of it) until a signal stops it. Every adapter
behaves the same: SIGTERM and SIGINT drain in-flight requests, bounded by
``settings.graceful_timeout``, and a second one forces; SIGHUP drains and returns with
``hooks.restart`` set, leaving the node's socket open so connections queue meanwhile.
"""
from __future__ import annotations

import os
import signal
import socket
from dataclasses import dataclass

from twelve.runtime.errors import BootError

GRACEFUL_TIMEOUT = 30  # seconds a stop waits for in-flight requests (default)

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


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    workers: int
    graceful_timeout: float
    app_ref: str
    proc_name: str

    @classmethod
    def from_config(cls, twelve_config: dict, release) -> "Settings":
        return cls(host=twelve_config["host"], port=int(twelve_config["port"]),
                   workers=int(twelve_config["web_concurrency"]),
                   graceful_timeout=float(twelve_config.get("graceful_timeout",
                                                            GRACEFUL_TIMEOUT)),
                   app_ref=release.manifest["app"], proc_name=release.name)

    @property
    def bind(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class Hooks:
    """What an adapter tells the node: ready (listening), stopping, and after a fork."""

    def __init__(self, ready, stopping, after_fork) -> None:
        self.ready, self.stopping, self.after_fork = ready, stopping, after_fork
        self.restart = False  # set when SIGHUP asked for a restart rather than a stop


class Gunicorn:
    name = "gunicorn"
    interface = "wsgi"

    def serve(self, app, settings: Settings, sock, hooks: Hooks) -> None:
        """Run gunicorn's arbiter in this process on ``sock``; return when it has stopped."""
        from gunicorn.app.base import BaseApplication
        from gunicorn.arbiter import Arbiter
        from gunicorn.sock import create_sockets

        class Node(Arbiter):
            stopping = False

            def start(self):
                self.LISTENERS = create_sockets(self.cfg, self.log, [os.dup(sock.fileno())])
                super().start()

            def signal(self, sig, frame):
                # A second TERM/INT while draining becomes gunicorn's quick shutdown (QUIT).
                if self.stopping and sig in (signal.SIGTERM, signal.SIGINT):
                    sig = signal.SIGQUIT
                super().signal(sig, frame)

            def handle_term(self):
                self.stopping = True
                hooks.stopping()
                raise StopIteration

            handle_int = handle_term  # Ctrl-C drains too (gunicorn's own SIGINT is quick)

            def handle_hup(self):
                hooks.restart = True
                self.stopping = True
                raise StopIteration

        options = {"bind": [settings.bind], "workers": settings.workers,
                   "graceful_timeout": max(1, round(settings.graceful_timeout)),
                   "proc_name": settings.proc_name, "logconfig_dict": gunicorn_logging(),
                   "when_ready": lambda arbiter: hooks.ready(),
                   "post_fork": lambda arbiter, worker: hooks.after_fork()}

        class Application(BaseApplication):
            def load_config(self):
                for key, value in options.items():
                    self.cfg.set(key, value)
                # gunicorn ≥ 25 opens a control socket under $HOME by default: a release
                # writes only under RELEASE_TMP and has its own control channel.
                if "control_socket_disable" in self.cfg.settings:
                    self.cfg.set("control_socket_disable", True)

            def load(self):
                return app

        try:
            Node(Application()).run()
        except SystemExit as e:
            if e.code not in (0, None):
                raise BootError(f"gunicorn stopped with exit status {e.code}",
                                hint="See its log lines above.") from None


def gunicorn_logging() -> dict:
    loggers = {name: {"level": "INFO", "handlers": ["stdout"], "propagate": False}
               for name in ("gunicorn.error", "gunicorn.access")}
    return dict(LOGGING, loggers=loggers)


class Uvicorn:
    name = "uvicorn"
    interface = "asgi"

    def serve(self, app, settings: Settings, sock, hooks: Hooks) -> None:
        """Run uvicorn's server in this process on ``sock``; return when it has stopped."""
        import uvicorn

        class Server(uvicorn.Server):
            def handle_exit(self, sig, frame):
                # Not uvicorn's: it would re-raise the signal after a graceful stop, killing
                # the node with it instead of letting it exit 0 (or restart).
                if self.should_exit:
                    self.force_exit = True
                    return
                if sig == signal.SIGHUP:
                    hooks.restart = True
                else:
                    hooks.stopping()
                self.should_exit = True

            async def startup(self, sockets=None):
                await super().startup(sockets=sockets)
                if not self.should_exit:
                    hooks.ready()

        config = uvicorn.Config(app, log_config=uvicorn_logging(), lifespan="auto",
                                timeout_graceful_shutdown=settings.graceful_timeout)
        server = Server(config)
        signal.signal(signal.SIGHUP, server.handle_exit)
        try:
            server.run(sockets=[socket.socket(fileno=os.dup(sock.fileno()))])
        except SystemExit as e:
            raise BootError(f"uvicorn could not start the app (exit status {e.code})",
                            hint="See the log lines above (the app's lifespan startup?).") \
                from None


def uvicorn_logging() -> dict:
    loggers = {name: {"level": "INFO", "handlers": ["stdout"], "propagate": False}
               for name in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    return dict(LOGGING, loggers=loggers)


SERVERS = {"gunicorn": Gunicorn(), "uvicorn": Uvicorn()}


def get(name: str):
    try:
        return SERVERS[name]
    except KeyError:
        raise BootError(f"unknown server {name!r} in release.json; known: "
                        f"{', '.join(SERVERS)}") from None


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
    if kind != server.interface:
        other = "uvicorn" if kind == "asgi" else "gunicorn"
        raise BootError(f"{ref} is a {kind.upper()} app but the server {server.name} serves "
                        f"{server.interface.upper()}",
                        hint=f"Set tool.twelve.server = \"{other}\" (and depend on {other}).")
    return kind

