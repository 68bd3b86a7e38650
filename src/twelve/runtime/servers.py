"""Server adapters: one small interface in front of each HTTP server, run in-process so the
node owns readiness, signals and shutdown. Each adapter imports its server lazily.

Interface: ``name``, ``interface`` ("wsgi" or "asgi") and ``serve(app, settings) -> exit code``.
Both servers drain gracefully on SIGTERM and on SIGINT, bounded by ``settings.graceful_timeout``.
"""
from __future__ import annotations

from dataclasses import dataclass

from twelve.runtime.errors import OK, BootError

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


class Gunicorn:
    name = "gunicorn"
    interface = "wsgi"

    def serve(self, app, settings: Settings) -> int:
        from gunicorn.app.base import BaseApplication
        from gunicorn.arbiter import Arbiter

        class Node(Arbiter):
            # Ctrl-C drains like SIGTERM does (gunicorn's own SIGINT is a quick stop).
            def handle_int(self):
                self.handle_term()

        options = {"bind": [settings.bind], "workers": settings.workers,
                   "graceful_timeout": max(1, round(settings.graceful_timeout)),
                   "proc_name": settings.proc_name, "logconfig_dict": gunicorn_logging()}

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

        Node(Application()).run()  # exits through sys.exit(0) after a graceful stop
        return OK


def gunicorn_logging() -> dict:
    loggers = {name: {"level": "INFO", "handlers": ["stdout"], "propagate": False}
               for name in ("gunicorn.error", "gunicorn.access")}
    return dict(LOGGING, loggers=loggers)


class Uvicorn:
    name = "uvicorn"
    interface = "asgi"

    def serve(self, app, settings: Settings) -> int:
        import uvicorn

        factory = settings.app_ref.endswith("()")
        target = (settings.app_ref.removesuffix("()") if settings.workers > 1 else app)
        config = uvicorn.Config(target, factory=factory and settings.workers > 1,
                                host=settings.host, port=settings.port,
                                workers=settings.workers, log_config=uvicorn_logging(),
                                timeout_graceful_shutdown=settings.graceful_timeout)
        if settings.workers > 1:
            from uvicorn.supervisors import Multiprocess
            sock = config.bind_socket()
            Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock]).run()
            return OK
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            raise BootError(f"uvicorn could not start on {settings.bind}",
                            hint="See the log lines above (a port in use?).")
        return OK


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

