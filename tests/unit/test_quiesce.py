"""servers.quiesce: how a stopping worker stops accepting without losing what it accepted, on
real sockets (the seccomp filter in a child process: it cannot be lifted)."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from twelve.runtime.servers import quiesce


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def unread(local) -> int:
    return sum(quiesce.unread_kinds(local))


def wait_unread(local, expected: int) -> int:
    deadline = time.monotonic() + 5
    while unread(local) != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return unread(local)


def test_an_accepted_connection_is_unread_until_read():
    with listener() as server:
        local = quiesce.endpoint(server)
        client = socket.create_connection(server.getsockname())
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        accepted, _ = server.accept()
        assert wait_unread(local, 1) == 1
        accepted.recv(1024)
        assert unread(local) == 0
        client.close()
        accepted.close()


def test_a_connection_whose_request_has_not_arrived_is_not_settled():
    """A client sends its request a moment after connect(): until then the connection must not
    look idle (a draining server would close it), unlike a keep-alive one that was served."""
    with listener() as server:
        local = quiesce.endpoint(server)
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        assert quiesce.unread_kinds(local) == (0, 1), "accepted, nothing received yet"
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_unread(local, 1) == 1
        accepted.recv(1024)
        assert unread(local) == 0, "served, now idle between requests"
        client.close()
        accepted.close()


def test_settle_waits_while_unread_and_stops_once_read():
    with listener() as server:
        local = quiesce.endpoint(server)
        client = socket.create_connection(server.getsockname())
        client.sendall(b"x")
        accepted, _ = server.accept()
        wait_unread(local, 1)
        started = time.monotonic()
        pauses = list(quiesce.settle(local, timeout=0.3))
        assert time.monotonic() - started >= 0.3 and len(pauses) > quiesce.CALM_POLLS
        accepted.recv(1)
        assert len(list(quiesce.settle(local, timeout=5))) == quiesce.CALM_POLLS - 1
        client.close()
        accepted.close()


def test_settle_says_when_it_gives_up_on_unread_connections(capfd):
    """A connection whose request is not read, or that sent nothing, within the timeout may be
    closed by the drain: the log says how many of each, once; a settle that ends calm says
    nothing."""
    with listener() as server:
        local = quiesce.endpoint(server)
        assert list(quiesce.settle(local, timeout=5)) == [quiesce.POLL] * (quiesce.CALM_POLLS - 1)
        assert capfd.readouterr().err == ""
        silent = socket.create_connection(server.getsockname())
        waiting = socket.create_connection(server.getsockname())
        waiting.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        accepted = [server.accept()[0] for _ in range(2)]
        assert wait_unread(local, 2) == 2
        list(quiesce.settle(local, timeout=0.1))
        assert capfd.readouterr().err == (
            f"twelve: worker {os.getpid()} stopped waiting after 0.1 s for accepted connections: "
            "1 with a request not read yet, 1 that sent nothing yet; the drain may close them "
            "unanswered\n")
        for sock in (silent, waiting, *accepted):
            sock.close()


def test_a_listener_whose_listening_ended_is_no_connection():
    """On a stop, the last worker to accept ends the listening in every process (shutdown):
    the others' copies are then bound but neither listening nor connected, and must not hold
    their settle to its timeout as connections that sent nothing."""
    with listener() as server:
        local = quiesce.endpoint(server)
        copy = socket.socket(fileno=os.dup(server.fileno()))  # the server's own copy
        server.shutdown(socket.SHUT_RD)  # closing.end
        assert quiesce.unread_kinds(local) == (0, 0)
        assert list(quiesce.settle(local, timeout=5)) == [quiesce.POLL] * (quiesce.CALM_POLLS - 1)
        copy.close()


def test_settle_honours_the_servers_own_view():
    with listener() as server:
        calls = []
        pauses = list(quiesce.settle(quiesce.endpoint(server), timeout=0.2,
                                     busy=lambda: calls.append(1) or True))
    assert len(pauses) == len(calls) > quiesce.CALM_POLLS


def test_only_connections_accepted_from_the_listener_count():
    """Not the queued ones (no process has them yet), not this process's own client sockets
    to another server, not a connection whose peer closed it (its FIN is no request)."""
    with listener() as server, listener() as other:
        local = quiesce.endpoint(server)
        queued = socket.create_connection(server.getsockname())
        queued.sendall(b"queued")
        outbound = socket.create_connection(other.getsockname())  # e.g. a database pool
        upstream, _ = other.accept()
        upstream.sendall(b"a reply this process has not read")
        closing = socket.create_connection(server.getsockname())
        time.sleep(0.05)
        accepted = [server.accept()[0] for _ in range(2)]  # queued, then closing
        closing.close()  # CLOSE_WAIT on our side, nothing unread but the FIN
        accepted[0].recv(1024)
        time.sleep(0.05)
        assert unread(local) == 0
        for sock in (queued, outbound, upstream, *accepted):
            sock.close()


def test_the_endpoint_of_an_ipv6_listener_matches_its_v4_mapped_connections():
    server = socket.socket(socket.AF_INET6)
    server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    server.bind(("::", 0))
    server.listen(4)
    with server:
        client = socket.create_connection(("127.0.0.1", server.getsockname()[1]))
        client.sendall(b"x")
        accepted, _ = server.accept()
        assert wait_unread(quiesce.endpoint(server), 1) == 1
        client.close()
        accepted.close()


def accepted_while_paused(loop_factory) -> tuple[int, bool]:
    node = listener()  # the node's socket; the server gets a dup of it, as in a release

    async def scenario():
        accepted = []
        server = await asyncio.start_server(lambda r, w: accepted.append(w),
                                            sock=socket.socket(fileno=os.dup(node.fileno())))
        port = node.getsockname()[1]
        first = socket.create_connection(("127.0.0.1", port))
        for _ in range(100):
            if accepted:
                break
            await asyncio.sleep(0.01)
        quiesce.pause_asyncio([server])
        second = socket.create_connection(("127.0.0.1", port))  # the kernel queues it
        await asyncio.sleep(0.2)
        still_serving = server.is_serving()
        server.close()
        first.close()
        second.close()
        return len(accepted), still_serving

    loop = loop_factory()
    try:
        return loop.run_until_complete(scenario())
    finally:
        loop.close()
        node.close()


def test_a_paused_asyncio_server_stays_open_and_leaves_new_connections_queued():
    assert accepted_while_paused(asyncio.new_event_loop) == (1, True)


def test_under_uvloop_a_paused_server_is_closed_instead():
    """uvloop accepts inside libuv, where remove_reader cannot reach."""
    uvloop = pytest.importorskip("uvloop")
    assert accepted_while_paused(uvloop.new_event_loop) == (1, False)


def test_the_filter_program_is_seven_instructions_of_eight_bytes():
    code = quiesce.accept_filter(0xC000003E, 43, 288)
    assert len(code) == 7 * 8


FORBID = textwrap.dedent("""
    import socket, threading
    from twelve.runtime.servers import quiesce
    server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(8)
    server.setblocking(False)
    seen = {}
    def in_another_thread():
        started.wait()
        try:
            server.accept(); seen["thread"] = "accepted"
        except BlockingIOError:
            seen["thread"] = "EAGAIN"
    started = threading.Event()
    thread = threading.Thread(target=in_another_thread); thread.start()
    socket.create_connection(server.getsockname()).sendall(b"x")
    print("installed" if quiesce.forbid_accept() else "unavailable")
    started.set(); thread.join()
    try:
        server.accept(); print("accepted")
    except BlockingIOError:
        print("EAGAIN")
    print(seen["thread"])
    socket.create_connection(server.getsockname()).close()  # connecting still works
    print("connected")
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="seccomp is Linux's")
def test_forbid_accept_makes_every_thread_see_an_empty_queue():
    out = subprocess.run([sys.executable, "-c", FORBID], capture_output=True, text=True,
                         check=False, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["installed", "EAGAIN", "EAGAIN", "connected"]
