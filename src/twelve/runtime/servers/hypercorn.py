"""hypercorn: one process serving ASGI or WSGI on asyncio; twelve's prefork runs several."""
from __future__ import annotations

import os
import signal

from twelve.runtime.servers import logging_config


class Hypercorn:
    name = "hypercorn"
    interfaces = ("wsgi", "asgi")
    multiprocess = False

    def serve(self, app, kind, settings, sock, hooks) -> None:
        import asyncio

        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"fd://{os.dup(sock.fileno())}"]
        config.graceful_timeout = settings.graceful_timeout
        config.logconfig_dict = logging_config("hypercorn.error", "hypercorn.access")
        config.accesslog = "-"

        async def main() -> None:
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            task = asyncio.current_task()

            def on_signal(sig: int) -> None:
                if stop.is_set():
                    task.cancel()  # a second signal forces
                    return
                if sig == signal.SIGHUP:
                    hooks.restart = True
                else:
                    hooks.stopping()
                stop.set()

            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.add_signal_handler(sig, on_signal, sig)
            hooks.ready()  # the socket listens already: connections queue until serve accepts
            await serve(app, config, shutdown_trigger=stop.wait, mode=kind)

        try:
            asyncio.run(main())
        except asyncio.CancelledError:
            pass


ADAPTER = Hypercorn()
