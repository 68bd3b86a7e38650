"""The node's side of an authenticated control connection: info, stop, restart, rpc and the
interactive console that `remote` attaches to.

Code run through rpc or the console writes to sys.stdout/sys.stderr as usual; a thread-aware
stream sends what *that session's* thread writes back to the client and lets every other thread
(the app, its logs) write where it always did — nothing leaks either way.
"""
from __future__ import annotations

import codeop
import os
import signal
import sys
import threading

from twelve.runtime import evaluation
from twelve.runtime.control import channel

_local = threading.local()
_install_lock = threading.Lock()


class SessionStream:
    """Stands in for sys.stdout or sys.stderr: per-thread redirection to a session."""

    def __init__(self, original, kind: str) -> None:
        self._original, self._kind = original, kind

    def write(self, text: str) -> int:
        sink = getattr(_local, "sink", None)
        if sink is None:
            return self._original.write(text)
        sink(self._kind, text)
        return len(text)

    def flush(self) -> None:
        if getattr(_local, "sink", None) is None:
            self._original.flush()

    def __getattr__(self, name):
        return getattr(self._original, name)


def _install_streams() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, SessionStream):
            sys.stdout = SessionStream(sys.stdout, "out")
        if not isinstance(sys.stderr, SessionStream):
            sys.stderr = SessionStream(sys.stderr, "err")


MAX_SESSIONS = channel.MAX_CONNECTIONS - 8  # rpc and consoles at once: the rest stays free
SESSION_WAIT = 1.0  # seconds an rpc or console waits for a session before the node says BUSY


def handler(node):
    """The function ControlServer calls with each authenticated connection's first request."""
    sessions = threading.BoundedSemaphore(MAX_SESSIONS)

    def handle(conn, request: dict) -> None:
        op = request.get("op")
        if op == "info":
            channel.send(conn, node.info())
        elif op in ("rpc", "console"):
            # rpc and consoles may run for long: bounded, so stop and restart always find room
            if not sessions.acquire(timeout=SESSION_WAIT):
                channel.send(conn, {"error": channel.BUSY, "busy": True})
                return
            try:
                if op == "rpc":
                    run_rpc(conn, str(request.get("code", "")))
                else:
                    run_console(conn)
            finally:
                sessions.release()
        elif op in ("stop", "restart"):
            answer, sig = node.request(op)  # the node's state decides (node.Node.request)
            channel.send(conn, answer)
            if sig is not None:
                os.kill(os.getpid(), sig)
        else:
            channel.send(conn, {"error": f"unknown operation {op!r}"})
    return handle


def _sink_to(conn, lock: threading.Lock):
    def sink(kind: str, text: str) -> None:
        if text:
            with lock:
                channel.send(conn, {kind: text})
    return sink


def run_rpc(conn, code: str) -> None:
    _install_streams()
    _local.sink = _sink_to(conn, threading.Lock())
    namespace = {"__name__": "__rpc__", "__builtins__": __builtins__}
    try:
        result = evaluation.run(code, namespace, "<rpc>")
        value = repr(result) if evaluation.has_value(result) else None
        reply = {"done": True, "value": value}
    except SystemExit as e:
        reply = {"done": True, "error": f"SystemExit: {e.code}\n"}
    except BaseException as e:
        reply = {"done": True, "error": evaluation.format_user_traceback(e, "<rpc>")}
    finally:
        _local.sink = None
    channel.send(conn, reply)


class Console:
    """One interactive session: a namespace that persists and a buffer of pending lines."""

    def __init__(self, conn) -> None:
        self.namespace = {"__name__": "__console__", "__builtins__": __builtins__}
        self.buffer: list[str] = []
        self.compile = codeop.CommandCompiler()
        self.conn = conn

    def push(self, line: str) -> bool:
        """Add a line; run the statement once complete. True: more input is needed."""
        self.buffer.append(line)
        source = "\n".join(self.buffer)
        try:
            code = self.compile(source, "<remote>", "single")
        except (SyntaxError, OverflowError, ValueError):
            self.buffer.clear()
            sys.stderr.write(evaluation.format_user_traceback(sys.exc_info()[1], "<remote>"))
            return False
        if code is None:
            return True
        self.buffer.clear()
        evaluation.autoimport(evaluation.parse(source, "<remote>"), self.namespace)
        try:
            exec(code, self.namespace)
        except SystemExit:
            raise
        except BaseException as e:
            sys.stderr.write(evaluation.format_user_traceback(e, "<remote>"))
        return False

    def complete(self, text: str) -> list[str]:
        import rlcompleter
        completer = rlcompleter.Completer(self.namespace)
        matches = []
        for state in range(200):
            match = completer.complete(text, state)
            if match is None:
                break
            matches.append(match)
        return matches


def run_console(conn) -> None:
    _install_streams()
    console = Console(conn)
    _local.sink = _sink_to(conn, threading.Lock())
    try:
        channel.send(conn, {"prompt": ">>> "})
        while True:
            message = channel.recv(conn)
            if message is None or message.get("bye"):
                return
            if "complete" in message:
                channel.send(conn, {"matches": console.complete(str(message["complete"]))})
                continue
            if message.get("reset"):
                console.buffer.clear()
            elif "line" in message:
                try:
                    more = console.push(str(message["line"]))
                except SystemExit:
                    channel.send(conn, {"bye": True})
                    return
                channel.send(conn, {"prompt": "... " if more else ">>> "})
                continue
            channel.send(conn, {"prompt": ">>> "})
    finally:
        _local.sink = None


def attach_terminal(release) -> None:
    """start_repl: a console on this terminal, in the node; leaving it stops the node."""
    import code

    def interact() -> None:
        try:
            import readline  # noqa: F401  (line editing for input())
        except ImportError:
            pass
        namespace = {"__name__": "__console__", "__builtins__": __builtins__}
        console = code.InteractiveConsole(namespace)
        try:
            console.interact(banner=f"{release.name} {release.vsn} (pid {os.getpid()}) — "
                                    "Ctrl-D stops the node.", exitmsg="")
        except SystemExit:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=interact, name="twelve-repl", daemon=True).start()
