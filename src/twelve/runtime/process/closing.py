"""How a stop ends the node's listening socket without leaving a client hanging.

A stop (not a restart) must do two things that pull against each other: serve every connection
the kernel already accepted into the listening socket's backlog, and refuse at once every
connection that arrives afterwards, so its client or load balancer retries elsewhere instead
of waiting through the drain and being reset at the end.

Only a socket that no longer listens refuses (RST to a SYN), and a socket that stops listening
resets what still waits in its backlog. So the order is: every worker stops accepting the
normal way; the last one to do so takes what waits in the backlog (``take``) and gives it to
its server (each adapter's ``adopt``), then ends the listening (``end``: shutdown(SHUT_RD),
which acts on the socket itself and so on every process's copy at once). Ending it while
another worker still accepts would make that worker's accept() fail with EINVAL, which some
servers log in a loop or die of; hence "the last one".

Which workers still accept is kept in one shared page mapped before any fork: byte 0 says the
node stops (``mark_stopping``, set by the node before it signals its workers; a restart leaves
it clear and the socket listening, connections queue for the next boot), and one slot per
worker holds its pid while it accepts (``started``, by the node after each fork;
``stopped_accepting``, by the worker). A slot whose process is gone counts as free, so a worker
that died never holds the end back. A server running in the node itself has no slot: it is the
last by definition.

What this cannot do: a stop that arrives during a restart's drain finds the workers already
paused without ending the listening; what waits then is reset when the node exits, as before.
"""
from __future__ import annotations

import mmap
import os
import socket
import struct
import time

from twelve.runtime.process import pids

_SLOT = struct.Struct("i")
_FIRST_SLOT = 8  # byte 0: the node stops
_page = mmap.mmap(-1, mmap.PAGESIZE)
SLOTS = (mmap.PAGESIZE - _FIRST_SLOT) // _SLOT.size


def mark_stopping() -> None:
    """In the node, when it stops for good (not a restart), before its workers are told."""
    _page[0] = 1


def stopping() -> bool:
    return _page[0] == 1


def _slots() -> list[int]:
    return [_SLOT.unpack_from(_page, _FIRST_SLOT + i * _SLOT.size)[0] for i in range(SLOTS)]


def _set(index: int, pid: int) -> None:
    _SLOT.pack_into(_page, _FIRST_SLOT + index * _SLOT.size, pid)


def started(pid: int, slot: int | None = None) -> None:
    """A worker that accepts from the listening socket: in the node, after the fork (only the
    node adds, so two additions never race for a slot), or in the worker itself when its
    supervisor numbers the workers (``slot``, its own)."""
    if slot is not None and slot < SLOTS:
        _set(slot, pid)
        return
    for index, holder in enumerate(_slots()):
        if holder == 0 or holder == pid or not pids.alive(holder):
            _set(index, pid)
            return
    # More workers than slots (a ceiling far above TWELVE_MAX_WORKERS' bound): this one is
    # not counted, and the listening may end while it still accepts (it then stops on EINVAL).


def stopped_accepting() -> bool:
    """In a worker that will accept no more: free its slot. True when no other live worker
    still accepts, i.e. this one ends the listening (if the node stops)."""
    me = os.getpid()
    for index, holder in enumerate(_slots()):
        if holder == me:
            _set(index, 0)
    return alone()


def alone() -> bool:
    """No worker other than this process accepts any more."""
    me = os.getpid()
    return not any(holder and holder != me and pids.alive(holder) for holder in _slots())


def finish(sock: socket.socket, adopt=None, wait: float = 0.0) -> int:
    """A worker that stopped accepting: if the node stops and no other worker accepts, take
    what waits in the backlog, give each connection to ``adopt(conn, addr)`` (the server's own
    way to serve an accepted connection), and end the listening. How many were taken. A server
    that cannot adopt (None) ends the listening only when nothing waits. ``wait``: how long to
    wait for the other workers to stop accepting or die, for a server whose workers may exit
    before their own ``finish`` ran (granian's exit as soon as their drain ends)."""
    last = stopped_accepting() or (wait > 0 and _until(alone, wait, 0.005))
    if not (last and stopping()):
        return 0
    taken = take(sock) if adopt is not None else []
    for conn, addr in taken:
        adopt(conn, addr)
    if adopt is None and queued(sock):
        return 0  # what waits would be reset: leave it for the node's exit, as before
    end(sock)
    return len(taken)


def wait_taken(sock: socket.socket, timeout: float) -> bool:
    """Wait (bounded) until the backlog is empty, for a server that keeps accepting meanwhile
    and whose accept loop twelve cannot reach (granian's)."""
    return _until(lambda: not queued(sock), timeout, 0.002)


def socket_fds() -> dict[int, str]:
    """This process's descriptors that are sockets, each with its ``socket:[INODE]`` (none
    where /proc/self/fd is missing)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return {}
    found = {}
    for name in names:
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor among them)
        if target.startswith("socket:"):
            found[int(name)] = target
    return found


def copies(sock: socket.socket) -> int:
    """How many descriptors of this process refer to the socket (0 where /proc is missing)."""
    try:
        target = f"socket:[{os.fstat(sock.fileno()).st_ino}]"
    except OSError:
        return 0
    return sum(found == target for found in socket_fds().values())


def wait_closed_copy(sock: socket.socket, before: int, timeout: float) -> bool:
    """Wait (bounded) until this process holds fewer copies of the socket than ``before``: a
    server closing its own once its accept loop has stopped."""
    return before > 0 and _until(lambda: copies(sock) < before, timeout, 0.005)


def _until(done, timeout: float, poll: float) -> bool:
    """Poll ``done()`` until it is true (True) or ``timeout`` seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True


def take(sock: socket.socket) -> list:
    """Accept every connection waiting in the backlog, without blocking."""
    taken = []
    with socket.socket(fileno=os.dup(sock.fileno())) as mine:
        mine.setblocking(False)  # O_NONBLOCK is the open file's: every copy is non-blocking
        while True:
            try:
                taken.append(mine.accept())
            except ConnectionAbortedError:
                continue  # that one was reset while it waited; the next may not be
            except OSError:  # EAGAIN: nothing more waits; EINVAL: it no longer listens
                return taken


def end(sock: socket.socket) -> None:
    """Stop listening, in every process that holds a copy: from now on a connection is
    refused. Whatever still waits in the backlog is reset."""
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass  # not listening any more (another worker ended it)


def queued(sock: socket.socket) -> int:
    """Connections waiting in a TCP listening socket's backlog (TCP_INFO's tcpi_unacked, Linux);
    0 where that cannot be known."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not hasattr(socket, "TCP_INFO"):
        return 0
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 32)
        return struct.unpack_from("=5I", info, 8)[4]
    except (OSError, struct.error):
        return 0


def listening(sock: socket.socket) -> bool:
    try:
        return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    except OSError:
        return False
