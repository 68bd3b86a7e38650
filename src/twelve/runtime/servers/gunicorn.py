"""gunicorn: its arbiter runs in the node's process and forks the workers (WSGI)."""
from __future__ import annotations

import os
import signal

from twelve.runtime.errors import BootError
from twelve.runtime.servers import logging_config


class Gunicorn:
    name = "gunicorn"
    interfaces = ("wsgi",)
    multiprocess = True

    def serve(self, app, kind, settings, sock, hooks) -> None:
        from gunicorn.app.base import BaseApplication

        options = {"bind": [settings.bind], "workers": settings.workers,
                   "graceful_timeout": max(1, round(settings.graceful_timeout)),
                   "proc_name": settings.proc_name,
                   "logconfig_dict": logging_config("gunicorn.error", "gunicorn.access"),
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
            arbiter_class(sock, hooks)(Application()).run()
        except SystemExit as e:
            if e.code not in (0, None):
                raise BootError(f"gunicorn stopped with exit status {e.code}",
                                hint="See its log lines above.") from None


def arbiter_class(sock, hooks):
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

    return Node


ADAPTER = Gunicorn()
