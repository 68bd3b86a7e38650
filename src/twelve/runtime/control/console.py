"""The `remote` console's client: line editing and history with readline on this side, the
code running in the node. Ctrl-C cancels the current input; Ctrl-D or exit() detaches and the
node keeps running. With input piped in, lines are read without prompts, for scripts.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from twelve.runtime.control import channel
from twelve.runtime.errors import OK, TwelveError

HISTORY_LENGTH = 1000
NODE_WENT_AWAY = "the node closed the connection during the remote session (did it stop?)"


class Client:
    def __init__(self, sock, release, info: dict, *, interactive: bool,
                 first: dict | None = None) -> None:
        self.sock, self.release, self.interactive = sock, release, interactive
        self.info = info
        self.first = first  # the node's first answer, read while connecting
        self.matches: list[str] = []

    def run(self) -> int:
        prompt = self._until_prompt()
        if self.interactive:
            # Ctrl-C cancels the input however the console was started: a process started in
            # the background of a non-interactive shell (a script, a CI job) inherits SIGINT
            # ignored, and Python then raises no KeyboardInterrupt.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._setup_readline()
            print(f"{self.release.name} {self.info.get('version')} (pid {self.info.get('pid')}) "
                  "— Ctrl-D or exit() detaches; the node keeps running.")
        try:
            while prompt is not None:
                prompt = self._one_line(prompt)
        finally:
            if self.interactive:
                self._save_history()
        return OK

    def _one_line(self, prompt: str) -> str | None:
        try:
            line = input(prompt) if self.interactive else self._read_piped()
        except EOFError:
            if self.interactive:
                print()
            channel.send(self.sock, {"bye": True})
            return None
        except KeyboardInterrupt:
            print("\nKeyboardInterrupt")
            channel.send(self.sock, {"reset": True})
            return self._until_prompt()
        if line is None:
            channel.send(self.sock, {"bye": True})
            return None
        channel.send(self.sock, {"line": line})
        return self._until_prompt()

    def _read_piped(self) -> str | None:
        line = sys.stdin.readline()
        return line.rstrip("\n") if line else None

    def _until_prompt(self) -> str | None:
        """Print the node's output until it asks for the next line (None: it said goodbye)."""
        while True:
            message, self.first = self.first or channel.recv(self.sock, limit=1 << 30), None
            if message is None:
                raise TwelveError(NODE_WENT_AWAY)
            if message.get("bye"):
                return None
            if "out" in message:
                sys.stdout.write(message["out"])
                sys.stdout.flush()
            elif "err" in message:
                sys.stderr.write(message["err"])
                sys.stderr.flush()
            elif "prompt" in message:
                return message["prompt"]
            elif "error" in message:
                raise TwelveError(message["error"])

    def _complete(self, text: str, state: int) -> str | None:
        if state == 0:
            channel.send(self.sock, {"complete": text})
            answer = channel.recv(self.sock) or {}
            self.matches = [str(m) for m in answer.get("matches", [])]
        return self.matches[state] if state < len(self.matches) else None

    def _setup_readline(self) -> None:
        try:
            import readline
        except ImportError:
            return
        readline.set_completer(self._complete)
        readline.set_completer_delims(" \t\n`~!@#$%^&*()-=+[{]}\\|;:'\",<>/?")
        readline.parse_and_bind("tab: complete")
        readline.set_history_length(HISTORY_LENGTH)
        try:
            readline.read_history_file(self._history_path())
        except OSError:
            pass

    def _save_history(self) -> None:
        try:
            import readline
            path = self._history_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
        except (ImportError, OSError):
            pass

    def _history_path(self) -> Path:
        base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                ".local", "state")
        return Path(base) / "twelve" / f"{self.release.name}.history"
