"""Telling the supervisor about the node's state: systemd's sd_notify protocol (READY=1,
STOPPING=1, WATCHDOG=1) and, for `bin/NAME daemon`, a pipe to the process that waits for the
node to be ready. Sending never fails the node: a supervisor that went away is not an error.
"""
from __future__ import annotations

import os

READY_FD = "TWELVE_READY_FD"  # set by `daemon` for the node it detaches


def sd_notify(state: str, environ=os.environ) -> None:
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return
    import socket

    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
    except OSError:
        pass


def ready(status: str) -> None:
    sd_notify(f"READY=1\nSTATUS={status}\nMAINPID={os.getpid()}")
    report_to_daemon("ready\n")
    start_watchdog()


def stopping() -> None:
    sd_notify("STOPPING=1")


def report_to_daemon(text: str) -> None:
    """Tell the waiting `daemon` command how the boot went, once; later boots say nothing."""
    fd = os.environ.pop(READY_FD, None)
    if fd is None:
        return
    try:
        with os.fdopen(int(fd), "w") as pipe:
            pipe.write(text)
    except (OSError, ValueError):
        pass


def forget_daemon() -> None:
    """In a forked worker: the report pipe is the node's, not the worker's."""
    fd = os.environ.pop(READY_FD, None)
    if fd is not None:
        try:
            os.close(int(fd))
        except (OSError, ValueError):
            pass


_watchdog = None  # the watchdog's thread, once started


def start_watchdog(environ=os.environ) -> None:
    """Ping systemd at half the WATCHDOG_USEC interval while the node lives."""
    global _watchdog
    usec = environ.get("WATCHDOG_USEC")
    pid = environ.get("WATCHDOG_PID")
    if _watchdog is not None or not usec or (pid and pid != str(os.getpid())):
        return
    try:
        interval = int(usec) / 2_000_000
    except (ValueError, OverflowError):
        return
    import threading  # here: every command imports this module, only a node pings

    if not 0 < interval <= threading.TIMEOUT_MAX:  # 0 or less would ping in a busy loop
        return
    stop = threading.Event()

    def ping() -> None:
        while not stop.wait(interval):
            sd_notify("WATCHDOG=1", environ)

    _watchdog = threading.Thread(target=ping, name="twelve-watchdog", daemon=True)
    _watchdog.start()
