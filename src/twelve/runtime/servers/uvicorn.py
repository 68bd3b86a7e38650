"""uvicorn: one process serving ASGI; twelve's prefork runs several when WEB_CONCURRENCY > 1."""
from __future__ import annotations

import asyncio
import os
import signal
import socket

from twelve.runtime.errors import BootError
from twelve.runtime.servers import DRAIN, FORCE, logging_config, quiesce


class Uvicorn:
    name = "uvicorn"
    interfaces = ("asgi",)
    multiprocess = False

    def serve(self, app, kind, settings, sock, hooks) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            def handle_exit(self, sig, frame):
                # Not uvicorn's: it would re-raise the signal after a graceful stop, killing
                # the node with it instead of letting it exit 0 (or restart).
                action = hooks.on_signal(sig)
                if action == FORCE:
                    self.force_exit = True
                elif action == DRAIN:
                    self.should_exit = True

            async def startup(self, sockets=None):
                await super().startup(sockets=sockets)
                if not self.should_exit:
                    hooks.ready()

            async def shutdown(self, sockets=None):
                # uvicorn closes connections it accepted but has not read a request from yet;
                # stop accepting first, wait (bounded) until every connection is serving a
                # request or has gone, then let uvicorn drain (servers.quiesce).
                quiesce.pause_asyncio(self.servers)
                await quiesce.finish_asyncio(self.servers, sock)
                for pause in quiesce.settle(listening, busy=self.awaiting_request):
                    if self.force_exit:
                        break  # a second signal
                    await asyncio.sleep(pause)
                await super().shutdown(sockets=sockets)

            def awaiting_request(self) -> bool:
                return any(getattr(c, "cycle", True) is None and not c.transport.is_closing()
                           for c in self.server_state.connections)

        config = uvicorn.Config(app, lifespan="auto", access_log=settings.access_log,
                                log_config=logging_config("uvicorn", "uvicorn.error",
                                                          "uvicorn.access"),
                                timeout_graceful_shutdown=settings.graceful_timeout)
        listening = quiesce.endpoint(sock)
        server = Server(config)
        signal.signal(signal.SIGHUP, server.handle_exit)
        try:
            server.run(sockets=[socket.socket(fileno=os.dup(sock.fileno()))])
        except SystemExit as e:
            raise BootError(f"uvicorn could not start the app (exit status {e.code})",
                            hint="See the log lines above (the app's lifespan startup?).") \
                from None


ADAPTER = Uvicorn()
