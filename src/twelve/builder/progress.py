"""Feedback while a build waits: what runs, for how long, and what each phase cost.

A build spends most of its time in other programs — uv installing the locked packages, an
alias running npm or esbuild, a step of the project's own — and some take a minute. So:

* ``Progress.watch`` runs a child process with its output read line by line: lines are shown
  (an alias's) or parsed (uv's "Downloading numpy (16.0MiB)", "Prepared 45 packages…") into a
  status. On a terminal the status is one line, redrawn every second with the elapsed time and
  cleared before any other output; otherwise it is written as plain lines, and after
  ``FIRST_BEAT`` seconds of silence a "still running" line every ``BEAT`` seconds.
* ``Progress.heartbeat`` does the same for work in this process (a ``module:function`` step).
* ``Progress.phase`` times a phase; ``summary`` is the closing line of a build.

``--quiet`` gives a ``Progress`` that shows nothing (it still runs and times everything).
The build's ``Progress`` is the ambient one while it runs (``using``/``current``, a context
variable), so code deep in a step — uv's install in the dependency cache, an alias's
commands — reports through it without every function between passing it on.
"""
from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable

Log = Callable[[str], None]

FIRST_BEAT = 5.0    # seconds before the first "still running" line (plain output)
BEAT = 15.0         # then one every this many seconds
REDRAW = 1.0        # a terminal's status line is redrawn this often
QUIET_START = 2.0   # nothing is drawn for work shorter than this
STILL_RUNNING = "  … {what}: still running ({seconds:.0f} s)"
SUMMARY = "* done in {total:.1f} s ({phases})"

_DOWNLOADING = re.compile(r"^\s*Downloading (\S+) \(([^)]+)\)")
_DOWNLOADED = re.compile(r"^\s*Downloaded (\S+)")
_COUNTED = re.compile(r"^\s*(Prepared|Installed|Resolved|Built) (\d+) packages?")


class Progress:
    """The user's view of one build (or one ``twelve run``)."""

    def __init__(self, log: Log, *, live: bool | None = None, quiet: bool = False) -> None:
        self.log, self.quiet = log, quiet
        self.live = (sys.stdout.isatty() if live is None else live) and not quiet
        self.phases: list[tuple[str, float, int]] = []  # name, seconds, depth
        self._depth = 0
        self._started = time.monotonic()
        self._drawn = False
        self._lock = threading.Lock()

    # -- output --------------------------------------------------------------------------

    def show(self, line: str, *, error: bool = False) -> None:
        """A line of output (``error``: on stderr), below a terminal's status line (which is
        redrawn later)."""
        if self.quiet:
            return
        with self._lock:
            self._clear()
            if error:
                print(line, file=sys.stderr, flush=True)
            else:
                self.log(line)

    def status(self, text: str) -> None:
        """The current status: redrawn in place on a terminal, a plain line otherwise."""
        if self.quiet:
            return
        with self._lock:
            if self.live:
                sys.stdout.write("\r\x1b[2K" + text[:_width()])
                sys.stdout.flush()
                self._drawn = True
            else:
                self.log(text)

    def _clear(self) -> None:
        if self._drawn:
            sys.stdout.write("\r\x1b[2K")
            sys.stdout.flush()
            self._drawn = False

    def done(self) -> None:
        with self._lock:
            self._clear()

    # -- waiting -------------------------------------------------------------------------

    def watch(self, what: str, proc: subprocess.Popen, *, show_output: bool,
              parse: Callable[[str, dict], str | None] | None = None) -> str:
        """Wait for ``proc`` (text pipes: stdout, and stderr unless merged into it), keeping
        the user informed; return everything it wrote. Shown output keeps its stream."""
        lines: list[str] = []
        state: dict = {}
        ticker = _Ticker(self, what)
        selector = selectors.DefaultSelector()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                selector.register(stream, selectors.EVENT_READ)
        try:
            while selector.get_map():
                for key, _ in selector.select(timeout=REDRAW):
                    line = key.fileobj.readline()
                    if not line:
                        selector.unregister(key.fileobj)
                        continue
                    lines.append(line)
                    ticker.heard()
                    if show_output:
                        self.show(line.rstrip("\n"), error=key.fileobj is proc.stderr)
                    elif parse is not None and (text := parse(line, state)):
                        ticker.note(text)
                ticker.tick()
        finally:
            selector.close()
            proc.wait()
            self.done()
        return "".join(lines)

    @contextmanager
    def heartbeat(self, what: str):
        """``with progress.heartbeat("step x"):`` around work in this process: plain "still
        running" lines from a thread (its own output may interleave, so no status line)."""
        stop = threading.Event()
        start = time.monotonic()

        def beat() -> None:
            wait = FIRST_BEAT
            while not stop.wait(wait):
                self.show(STILL_RUNNING.format(what=what, seconds=time.monotonic() - start))
                wait = BEAT

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    # -- timing --------------------------------------------------------------------------

    @contextmanager
    def phase(self, name: str):
        """Time a phase; phases inside it are shown in brackets after it."""
        start, depth = time.monotonic(), self._depth
        self._depth += 1
        index = len(self.phases)
        self.phases.append((name, 0.0, depth))
        try:
            yield
        finally:
            self._depth = depth
            self.phases[index] = (name, time.monotonic() - start, depth)

    def summary(self) -> str:
        """``* done in 35.2 s (assets.deploy 12.0 s, assemble 21.9 s [python 0.4 s, …])``."""
        total = time.monotonic() - self._started
        parts: list[str] = []
        for i, (name, seconds, depth) in enumerate(self.phases):
            text = f"{name} {seconds:.1f} s"
            if depth and (i == 0 or self.phases[i - 1][2] < depth):
                text = "[" + text
            if depth and (i + 1 == len(self.phases) or self.phases[i + 1][2] < depth):
                text += "]"
            parts.append(text)
        phases = ", ".join(parts).replace(", [", " [")
        return SUMMARY.format(total=total, phases=phases or "no phases")


class _Ticker:
    """The clock of one ``watch``: the status line on a terminal, beats in plain output."""

    def __init__(self, progress: Progress, what: str) -> None:
        self.progress, self.what = progress, what
        self.start = self.last_heard = time.monotonic()
        self.detail = ""
        self.next_beat = FIRST_BEAT

    def heard(self) -> None:
        self.last_heard = time.monotonic()

    def note(self, text: str) -> None:
        """News (uv's lines): drawn at once, on a terminal with the elapsed time."""
        self.detail = text
        if self.progress.live:
            elapsed = time.monotonic() - self.start
            self.progress.status(f"  {self.what}: {text} ({elapsed:.0f} s)")
        else:
            self.progress.status(f"  {self.what}: {text}")

    def tick(self) -> None:
        now = time.monotonic()
        elapsed = now - self.start
        if self.progress.live:
            if elapsed >= QUIET_START:
                detail = f": {self.detail}" if self.detail else ""
                self.progress.status(f"  {self.what}{detail} ({elapsed:.0f} s)")
        elif now - self.last_heard >= self.next_beat:
            self.progress.show(STILL_RUNNING.format(what=self.what, seconds=elapsed))
            self.last_heard, self.next_beat = now, BEAT


def uv_install_status(line: str, state: dict) -> str | None:
    """A status from a line of `uv pip install`: downloads (count and size) and counts."""
    match = _DOWNLOADING.match(line)
    if match:
        state.setdefault("downloading", []).append((match.group(1), match.group(2)))
        return f"downloading {match.group(1)} ({match.group(2)})"
    match = _DOWNLOADED.match(line)
    if match:
        state["downloaded"] = state.get("downloaded", 0) + 1
        total = len(state.get("downloading", ()))
        return f"downloaded {state['downloaded']} of {total} large packages"
    match = _COUNTED.match(line)
    if match:
        count = int(match.group(2))
        return f"{match.group(1).lower()} {count} package{'s' if count != 1 else ''}"
    return None


def _width() -> int:
    try:
        return max(20, os.get_terminal_size(sys.stdout.fileno()).columns - 1)
    except OSError:
        return 79


_CURRENT: ContextVar[Progress | None] = ContextVar("twelve_progress", default=None)


@contextmanager
def using(progress: Progress):
    """Make ``progress`` the one ``current()`` returns, for the duration."""
    token = _CURRENT.set(progress)
    try:
        yield progress
    finally:
        _CURRENT.reset(token)


def current() -> Progress | None:
    """The ``Progress`` of the build running now, or None (a library call, a test)."""
    return _CURRENT.get()
