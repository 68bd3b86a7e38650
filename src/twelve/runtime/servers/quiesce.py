"""Stopping a server without losing a connection: stop accepting first, let every connection
already accepted have its request read, and only then let the server drain.

A draining server closes the connections that look idle — and a connection accepted a moment
ago, whose request still sits unread in the kernel, looks idle. Meanwhile the node's listening
socket keeps queueing new connections for the next boot (restart) or until the node exits
(stop). So the order matters: no worker may take one more connection once its drain begins.

- ``pause_asyncio``: an asyncio server stops accepting without being closed. Closing it is not
  enough: CPython fails the connections it accepted in the same loop iteration but has not yet
  wrapped in a transport (``Server._attach`` asserts the server is open), and drops them, which
  the client sees as a reset. (uvloop accepts inside libuv, out of reach of remove_reader: its
  servers are closed, which it does without that race.)
- ``forbid_accept``: for servers whose accept loop twelve cannot reach (granian's, in Rust), a
  seccomp filter on the worker process makes accept() answer EAGAIN ("nothing to accept"), as
  if the queue were empty. Only for processes about to exit: the filter cannot be lifted, and
  children started afterwards inherit it.
- ``finish_asyncio``: after the pause, on a stop, the last worker to stop accepting serves what
  still waits in the node's backlog and ends the listening (twelve.runtime.process.closing).
- ``settle``: the pauses to sleep until none of this process's connections accepted from the
  listener holds request bytes the server has not read (FIONREAD on each), bounded by a
  timeout.

What stays out of reach: a connection accepted before any byte arrived (a TLS handshake not
begun, a browser's preconnect) and a request sent on an idle keep-alive connection just as the
server closes it. HTTP clients retry such requests on a connection they reused (RFC 9112,
9.3.1).
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
import sys
import termios
import time
from collections.abc import Callable, Iterator

from twelve.runtime.process import closing

SETTLE_TIMEOUT = 1.0  # seconds a drain waits, at most, for accepted connections to be read
POLL = 0.01
CALM_POLLS = 2  # consecutive polls with nothing unread: a request read is being served by then


def pause_asyncio(servers) -> None:
    """Stop the asyncio servers accepting; they stay open (the server closes them later)."""
    for server in servers:
        loop = server.get_loop()
        paused = [loop.remove_reader(sock.fileno()) for sock in server.sockets]
        if not all(paused):
            server.close()  # not the selector loop's own accept (uvloop): close is safe there


async def finish_asyncio(servers, sock: socket.socket) -> None:
    """After ``pause_asyncio``: this process accepts no more. On a stop, if it is the last to
    accept, it serves what waits in the backlog through the servers' own protocol and ends the
    listening (process.closing). uvloop's servers keep their factory out of reach: there, the
    listening ends only when nothing waits."""
    factory = next((getattr(s, "_protocol_factory", None) for s in servers), None)
    taken: list[socket.socket] = []
    closing.finish(sock, None if factory is None else lambda conn, addr: taken.append(conn))
    if taken:
        loop = servers[0].get_loop()
        for conn in taken:
            await loop.connect_accepted_socket(factory, conn)


def settle(local, timeout: float = SETTLE_TIMEOUT,
           busy: Callable[[], bool] | None = None) -> Iterator[float]:
    """Yield how long to sleep, until this process has read the bytes of every connection it
    accepted from the listener at ``local`` (its ``endpoint``), and ``busy()``, the server's
    own view, is false, for CALM_POLLS polls; or until timeout. One loop for threads
    (time.sleep) and event loops (asyncio.sleep) alike. A timeout with connections still
    unread says so on stderr (the node's log): the drain that follows may close them, and
    their clients then see the connection end without a response."""
    deadline = time.monotonic() + timeout
    calm, unread = 0, (0, 0)
    while time.monotonic() < deadline:
        unread = unread_kinds(local)
        calm = 0 if any(unread) or (busy is not None and busy()) else calm + 1
        if calm >= CALM_POLLS:
            return
        yield POLL
    if any(unread):
        sys.stderr.write(f"twelve: worker {os.getpid()} stopped waiting after {timeout:g} s "
                         f"for accepted connections: {unread[0]} with a request not read yet, "
                         f"{unread[1]} that sent nothing yet; the drain may close them "
                         "unanswered\n")


def endpoint(sock: socket.socket):
    """What the connections accepted from a listener have in common: family and port (inet),
    or the path (unix)."""
    address = sock.getsockname()
    return (sock.family, address[1] if isinstance(address, tuple) else address)


def unread_kinds(local) -> tuple[int, int]:
    """Connections of this process accepted from the listener at ``local`` (an ``endpoint``)
    that hold bytes not read yet, and (TCP) those that have not received a byte yet: a client
    sends its request a moment after connect() returns, longer on a busy machine, and a
    draining server closes that connection as idle ((0, 0) where /proc/self/fd is missing)."""
    waiting = silent = 0
    for fd in closing.socket_fds():
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            continue  # closed meanwhile
        try:
            if (sock.type == socket.SOCK_STREAM and endpoint(sock) == local
                    and not closing.listening(sock) and _connected(sock)):
                pending = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
                if struct.unpack("i", pending)[0] > 0:
                    waiting += 1
                elif _nothing_received(sock):
                    silent += 1
        except OSError:
            pass
        finally:
            sock.detach()  # the fd stays the server's
    return waiting, silent


def _connected(sock: socket.socket) -> bool:
    """A connection, not the listener itself once its listening has ended (a stop's last
    worker shuts it down in every process: each copy is then bound, but neither listening nor
    connected, and has received nothing)."""
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


_TCPI_BYTES_RECEIVED = 128  # offset of tcpi_bytes_received (u64) in struct tcp_info (Linux 4.1)


def _nothing_received(sock: socket.socket) -> bool:
    """A TCP connection whose peer has sent no byte yet: its request is still on its way (an
    idle keep-alive connection has received one before)."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not hasattr(socket, "TCP_INFO"):
        return False
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCPI_BYTES_RECEIVED + 8)
    if len(info) < _TCPI_BYTES_RECEIVED + 8:
        return False  # a kernel without the field: unknown, as before
    return struct.unpack_from("=Q", info, _TCPI_BYTES_RECEIVED)[0] == 0


# machine → (AUDIT_ARCH_*, syscall numbers of accept and accept4, of seccomp)
_SYSCALLS = {
    "x86_64": (0xC000003E, (43, 288), 317),
    "aarch64": (0xC00000B7, (202, 242), 277),
}
_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1
_SECCOMP_RET_ALLOW = 0x7FFF0000
_SECCOMP_RET_ERRNO = 0x00050000
_BPF_LD_W_ABS, _BPF_JEQ_K, _BPF_RET_K = 0x20, 0x15, 0x06


def accept_filter(audit_arch: int, accept: int, accept4: int) -> bytes:
    """The classic BPF program: accept() and accept4() fail with EAGAIN, all else passes."""
    program = [
        (_BPF_LD_W_ABS, 0, 0, 4),           # A = seccomp_data.arch
        (_BPF_JEQ_K, 0, 4, audit_arch),     # another ABI: allow
        (_BPF_LD_W_ABS, 0, 0, 0),           # A = seccomp_data.nr
        (_BPF_JEQ_K, 1, 0, accept),
        (_BPF_JEQ_K, 0, 1, accept4),
        (_BPF_RET_K, 0, 0, _SECCOMP_RET_ERRNO | errno.EAGAIN),
        (_BPF_RET_K, 0, 0, _SECCOMP_RET_ALLOW),
    ]
    return b"".join(struct.pack("=HBBI", *insn) for insn in program)


def forbid_accept() -> bool:
    """From now on, no thread of this process accepts a connection. False where seccomp is not
    available (another OS or machine, or a sandbox forbidding it): the caller drains anyway."""
    if not sys.platform.startswith("linux"):
        return False
    syscalls = _SYSCALLS.get(os.uname().machine)  # the kernel's machine, and a 32-bit
    if syscalls is None or sys.maxsize <= 2**32:  # Python on it has other syscall numbers
        return False
    import ctypes  # here: only a stopping granian worker pays for it

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    audit_arch, (accept, accept4), seccomp = syscalls
    code = accept_filter(audit_arch, accept, accept4)
    buffer = ctypes.create_string_buffer(code, len(code))
    program = SockFprog(len(code) // 8, ctypes.addressof(buffer))
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        # variadic C functions: pass every argument at its full width
        long = ctypes.c_long
        if libc.prctl(ctypes.c_int(_PR_SET_NO_NEW_PRIVS), long(1), long(0), long(0),
                      long(0)) != 0:
            return False
        return libc.syscall(long(seccomp), long(_SECCOMP_SET_MODE_FILTER),
                            long(_SECCOMP_FILTER_FLAG_TSYNC), ctypes.byref(program)) == 0
    except (OSError, AttributeError):
        return False
