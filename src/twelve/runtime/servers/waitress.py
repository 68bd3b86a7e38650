"""waitress: one process with a thread pool serving WSGI; twelve's prefork runs several.

waitress has no graceful stop of its own, so the loop is driven here: on SIGTERM the listening
dispatcher closes (on a stop, the last worker first takes what waits in the node's backlog and
ends the listening, twelve.runtime.process.closing; on a restart it stays open), busy
connections finish their requests, idle keep-alive connections close once quiet for a moment
with nothing unread (a request already on its way is served, not reset), and the worker waits
for them up to the graceful timeout.
"""
from __future__ import annotations

import os
import signal
import socket
import time

from twelve.runtime.servers import DRAIN, FORCE

QUIET = 0.3  # seconds an idle connection must have been quiet before a drain closes it

class Waitress:
    name = "waitress"
    interfaces = ("wsgi",)
    multiprocess = False

    def serve(self, app, kind, settings, sock, hooks) -> None:
        from waitress import wasyncore
        from waitress.server import create_server

        listener = socket.socket(fileno=os.dup(sock.fileno()))
        server = create_server(app, sockets=[listener], ident="twelve")
        state = {"stop": False, "force": False}

        def on_signal(sig, frame) -> None:
            action = hooks.on_signal(sig)
            if action == FORCE:
                state["force"] = True
            elif action == DRAIN:
                state["stop"] = True

        previous = {s: signal.signal(s, on_signal)
                    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        socket_map = getattr(server, "map", None) or server._map  # several sockets, or one
        try:
            hooks.ready()
            while not state["stop"]:
                wasyncore.loop(timeout=0.2, map=socket_map, use_poll=True, count=1)
            drain(socket_map, settings.graceful_timeout, state, sock)
        finally:
            server.task_dispatcher.shutdown(timeout=1)
            wasyncore.close_all(socket_map)
            for s, handler in previous.items():
                signal.signal(s, handler)


def drain(socket_map: dict, timeout: float, state: dict, sock) -> None:
    from waitress import wasyncore
    from waitress.channel import HTTPChannel
    from waitress.server import BaseWSGIServer

    from twelve.runtime.process import closing

    for dispatcher in list(socket_map.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.del_channel()
            # On a stop, the last worker to stop accepting serves what waits in the backlog
            # and ends the listening (process.closing); otherwise the node's socket listens on.
            closing.finish(sock, lambda conn, addr, d=dispatcher: _adopt(d, socket_map,
                                                                        conn, addr))
            dispatcher.socket.close()  # our dup
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not state["force"]:
        channels = [c for c in socket_map.values() if isinstance(c, HTTPChannel)]
        if not channels:
            return
        now = time.time()
        for channel in channels:
            with channel.requests_lock:
                # A busy channel is left alone: it finishes its request and becomes idle.
                # (close_when_flushed would close it before its queued task even wrote.)
                idle = not channel.requests and channel.request is None
                if idle and now - channel.last_activity > QUIET and not _unread(channel.socket):
                    channel.will_close = True
        wasyncore.loop(timeout=0.05, map=socket_map, use_poll=True, count=1)


def _adopt(dispatcher, socket_map: dict, conn, addr) -> None:
    """Serve a connection taken from the backlog as the dispatcher would have."""
    dispatcher.set_socket_options(conn)
    dispatcher.channel_class(dispatcher, conn, dispatcher.fix_addr(addr), dispatcher.adj,
                             map=socket_map)


def _unread(sock) -> bool:
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return False


ADAPTER = Waitress()
