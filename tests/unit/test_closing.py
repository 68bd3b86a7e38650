"""twelve.runtime.process.closing on real sockets and real processes: the backlog is counted and
taken, the listening ends for every copy at once, and only the last worker to accept ends it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from twelve.runtime.process import closing


@pytest.fixture
def listener():
    sock = socket.create_server(("127.0.0.1", 0), backlog=16)
    yield sock
    sock.close()


@pytest.fixture
def page():
    """The module's shared page, cleared before and after (one per process)."""
    def clear():
        closing._page[:] = bytes(len(closing._page))
    clear()
    yield
    clear()


def connect(sock) -> socket.socket:
    return socket.create_connection(sock.getsockname(), timeout=5)


def wait_queued(sock, n: int) -> None:
    deadline = time.monotonic() + 5
    while closing.queued(sock) != n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert closing.queued(sock) == n


def test_the_backlog_is_counted_taken_and_then_the_listening_ends(listener):
    clients = [connect(listener) for _ in range(3)]
    wait_queued(listener, 3)
    copy = socket.socket(fileno=os.dup(listener.fileno()))
    taken = closing.take(listener)
    assert len(taken) == 3 and closing.queued(listener) == 0
    closing.end(listener)
    assert not closing.listening(listener) and not closing.listening(copy)  # every copy
    with pytest.raises(ConnectionRefusedError):
        connect(listener)
    # what was taken before the end is still served
    for client, (conn, _) in zip(clients, taken):
        client.sendall(b"ping")
        assert conn.recv(4) == b"ping"
        conn.close()
        client.close()
    copy.close()
    closing.end(listener)  # a second end (another worker) is harmless


def test_a_worker_is_alone_once_every_other_stopped_or_died(page):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        closing.started(other.pid)
        assert not closing.alone()
        assert closing.stopped_accepting() is False  # the other one still accepts
    finally:
        other.kill()
        other.wait()
    assert closing.alone(), "a worker that died never holds the end back"
    closing.started(12345678, slot=0)  # a numbered worker writes its own slot
    assert closing._slots()[0] == 12345678


def test_finish_ends_only_on_a_stop_and_gives_what_waits_to_the_server(listener, page):
    client = connect(listener)
    wait_queued(listener, 1)
    adopted = []
    assert closing.finish(listener, lambda conn, addr: adopted.append(conn)) == 0
    assert closing.listening(listener) and not adopted, "a restart keeps it listening"
    closing.mark_stopping()
    assert closing.finish(listener, lambda conn, addr: adopted.append(conn)) == 1
    assert not closing.listening(listener)
    client.sendall(b"x")
    assert adopted[0].recv(1) == b"x"
    adopted[0].close()
    client.close()


def test_a_server_that_cannot_adopt_leaves_a_waiting_connection_alone(listener, page):
    client = connect(listener)
    wait_queued(listener, 1)
    closing.mark_stopping()
    assert closing.finish(listener) == 0
    assert closing.listening(listener), "ending now would reset the waiting connection"
    client.close()


def test_copies_count_this_process_descriptors(listener):
    before = closing.copies(listener)
    fd = os.dup(listener.fileno())
    assert closing.copies(listener) == before + 1
    os.close(fd)
    assert closing.wait_closed_copy(listener, before + 1, timeout=1)
    assert not closing.wait_closed_copy(listener, before, timeout=0.05)


def test_finish_may_wait_for_a_worker_that_exits_without_finishing(listener, page):
    """A granian worker can exit before its own finish runs: the one still serving, asked to
    wait, ends the listening once that worker is gone."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    try:
        closing.started(other.pid)
        closing.mark_stopping()
        assert closing.finish(listener) == 0 and closing.listening(listener), "not alone yet"
        closing.finish(listener, wait=10)
        assert not closing.listening(listener)
    finally:
        other.kill()
        other.wait()
