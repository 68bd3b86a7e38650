"""hypercorn: one process serving ASGI or WSGI on asyncio; twelve's prefork runs several."""
from __future__ import annotations

import os
import signal

from twelve.runtime.process.listen import BACKLOG
from twelve.runtime.servers import DRAIN, FORCE, logging_config, quiesce


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
        config.backlog = BACKLOG  # asyncio re-listens the node's socket with this backlog
        config.graceful_timeout = settings.graceful_timeout
        config.logconfig_dict = logging_config("hypercorn.error", "hypercorn.access")
        config.accesslog = "-" if settings.access_log else None
        stop = asyncio.Event()  # bound to the loop on first use (Python ≥ 3.10)
        listening = record_servers(asyncio)

        async def until_stopped() -> None:
            await stop.wait()
            # hypercorn closes idle connections before it stops accepting, so a connection
            # accepted but not yet read would be closed: stop accepting first, let those be
            # read, then let hypercorn drain (servers.quiesce).
            quiesce.pause_asyncio(listening)
            await quiesce.finish_asyncio(listening, sock)
            for pause in quiesce.settle(quiesce.endpoint(sock)):
                await asyncio.sleep(pause)

        async def main() -> None:
            loop = asyncio.get_running_loop()
            task = asyncio.current_task()

            def on_signal(sig: int) -> None:
                action = hooks.on_signal(sig)
                if action == FORCE:
                    task.cancel()
                elif action == DRAIN:
                    stop.set()

            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.add_signal_handler(sig, on_signal, sig)
            hooks.ready()  # the socket listens already: connections queue until serve accepts
            await serve(app, config, shutdown_trigger=until_stopped, mode=kind)

        try:
            asyncio.run(main())
        except asyncio.CancelledError:
            pass


def record_servers(asyncio) -> list:
    """The asyncio servers hypercorn starts in this process, so a stop can close them first."""
    servers: list = []
    start_server = asyncio.start_server

    async def recording_start_server(*args, **kwargs):
        server = await start_server(*args, **kwargs)
        servers.append(server)
        return server

    asyncio.start_server = recording_start_server
    return servers


ADAPTER = Hypercorn()
