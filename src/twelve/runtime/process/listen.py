"""The node's listening socket. twelve owns it, not the server: it comes from systemd socket
activation (LISTEN_FDS), from the previous boot of this node across a restart (so connections
queue in its backlog instead of being refused), or from binding HOST:PORT. Servers get a dup()
of it, so closing theirs never closes the node's.
"""
from __future__ import annotations

import errno
import os
import socket

from twelve.runtime.config.env import ConfigError
from twelve.runtime.errors import BootError

SD_LISTEN_FDS_START = 3
INHERITED_FD = "TWELVE_LISTEN_FD"  # set across a restart's exec
BACKLOG = 2048
WRONG_HOST = "Set HOST to an address of this machine, e.g. 0.0.0.0 or ::"
NOT_FDS = "LISTEN_FDS={value} is not a number of file descriptors"
NOT_FDS_HINT = ("Socket activation sets it (systemd, systemd-socket-activate); unset it to "
                "bind HOST:PORT instead.")
NOT_INHERITED = "{name}={value} is not the listening socket of a restarting node"
NOT_INHERITED_HINT = "twelve sets {name} across a restart only: unset it."


def listening_socket(host: str, port: int, environ=os.environ) -> socket.socket:
    sock = inherited(environ) or activated(environ)
    if sock is not None:
        return sock
    return bind(host, port)


def inherited(environ) -> socket.socket | None:
    fd = environ.pop(INHERITED_FD, None)
    if fd is None:
        return None
    try:
        sock = socket.socket(fileno=fd_number(fd))
    except (OSError, ValueError):
        raise ConfigError(NOT_INHERITED.format(name=INHERITED_FD, value=_shown(fd)),
                          hint=NOT_INHERITED_HINT.format(name=INHERITED_FD)) from None
    sock.set_inheritable(False)
    return sock


def fd_number(text: str) -> int:
    """A plain decimal number of a few digits (int() would take "٣", "1_0" or 5,000 digits)."""
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise ValueError(text)
    return int(text)


def _shown(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def activated(environ) -> socket.socket | None:
    """systemd socket activation: LISTEN_FDS for this very process."""
    count, pid = environ.get("LISTEN_FDS"), environ.get("LISTEN_PID")
    if not count or pid != str(os.getpid()):
        return None  # as sd_listen_fds(3): not passed to this very process
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        environ.pop(name, None)  # our children must not take them for their own
    try:
        number = fd_number(count)
    except ValueError:
        raise ConfigError(NOT_FDS.format(value=_shown(count)), hint=NOT_FDS_HINT) from None
    if number < 1:
        return None
    try:
        sock = socket.socket(fileno=SD_LISTEN_FDS_START)
        if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET,
                                                                  socket.SO_ACCEPTCONN):
            sock.detach()
            raise OSError("not a listening stream socket")
    except OSError as e:
        raise ConfigError(f"LISTEN_FDS={count} but file descriptor {SD_LISTEN_FDS_START} is "
                          f"not a listening socket ({e.strerror or e})",
                          hint="The .socket unit must be a ListenStream= socket; or unset "
                               "LISTEN_FDS and LISTEN_PID to bind HOST:PORT instead.") from None
    sock.set_inheritable(False)
    return sock


def bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ConfigError(f"cannot listen on {_shown(host)}:{port}: {e.strerror}",
                          hint=WRONG_HOST) from None
    except (UnicodeError, ValueError):  # IDNA refuses it: the config checks should have
        raise ConfigError(f"cannot listen on {_shown(host)}:{port}: not an address or host "
                          "name", hint=WRONG_HOST) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6 and host in ("::", ""):
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRNOTAVAIL:  # HOST is no address of this machine: config
            raise ConfigError(f"cannot listen on {_shown(host)}:{port}: {e.strerror}",
                              hint=WRONG_HOST) from None
        raise BootError(f"cannot listen on {_shown(host)}:{port}: {e.strerror}",
                        hint="Another process may use this port: choose another with PORT, "
                             "or stop it.") from None
    sock.listen(BACKLOG)
    return sock


def describe(sock: socket.socket) -> str:
    address = sock.getsockname()
    if sock.family == socket.AF_INET6:
        return f"http://[{address[0]}]:{address[1]}"
    if sock.family == socket.AF_UNIX:
        return f"unix:{address}"
    return f"http://{address[0]}:{address[1]}"
