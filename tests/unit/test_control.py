"""The control protocol on its own: frames, the mutual HMAC handshake, hostile peers."""
from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from twelve.runtime import control


@pytest.fixture
def server(tmp_path):
    """A ControlServer whose handler answers {"op": "echo"} requests."""
    handled = []

    def handle(conn):
        while True:
            message = control.recv(conn)
            if message is None:
                return
            handled.append(message)
            control.send(conn, {"echo": message})

    path = control.make_run_dir(tmp_path) / "web.sock"
    srv = control.ControlServer(path, b"right-cookie", handle, lambda: {"pid": 1234}).start()
    yield srv, handled
    srv.close()


def test_handshake_and_requests(server):
    srv, handled = server
    sock, info = control.connect(srv.path, b"right-cookie", name="hello")
    with sock:
        assert info["pid"] == 1234 and info["ok"] is True
        control.send(sock, {"op": "echo", "n": 1})
        assert control.recv(sock) == {"echo": {"op": "echo", "n": 1}}
    assert handled == [{"op": "echo", "n": 1}]


def test_wrong_cookie_fails_both_ways(server):
    srv, _ = server
    with pytest.raises(control.ControlError, match="authentication failed"):
        control.connect(srv.path, b"wrong-cookie", name="hello")


def test_not_running_and_stale_socket(tmp_path):
    path = control.make_run_dir(tmp_path) / "web.sock"
    with pytest.raises(control.NotRunning, match="hello is not running") as info:
        control.connect(path, b"c", name="hello")
    assert info.value.exit_code == 3
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: what kill -9 leaves behind
    with pytest.raises(control.NotRunning):
        control.connect(path, b"c", name="hello")


def test_the_cookie_never_crosses_the_socket(server, monkeypatch):
    srv, _ = server
    sent = []
    original = control.send
    monkeypatch.setattr(control, "send", lambda s, m: (sent.append(repr(m)), original(s, m)))
    sock, _ = control.connect(srv.path, b"right-cookie", name="hello")
    sock.close()
    assert sent and not any("right-cookie" in m for m in sent)


def test_frames_are_bounded_and_validated():
    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack(">I", control.MAX_FRAME + 1))
        with pytest.raises(control.ProtocolError, match="exceeds the limit"):
            control.recv(b)
    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack(">I", 3) + b"[1]")
        with pytest.raises(control.ProtocolError, match="JSON object"):
            control.recv(b)
    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack(">I", 10) + b"{")
        a.close()
        with pytest.raises(control.ProtocolError, match="middle of a frame"):
            control.recv(b)


def raw(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(path))
    s.settimeout(10)
    return s


def test_hostile_clients_lose_only_their_connection(server):
    srv, _ = server
    junk = [b"", b"\x00\x00\x00\x05hello", b"\xff\xff\xff\xff", b"\x00\x00\x00\x02{}",
            struct.pack(">I", 40) + b'{"nonce": "zz", "proof": "00"}' + b" " * 9]
    for payload in junk:
        s = raw(srv.path)
        control.recv(s)  # the server's hello
        s.sendall(payload)
        s.close()
    sock, info = control.connect(srv.path, b"right-cookie", name="hello")
    sock.close()
    assert info["pid"] == 1234


def test_slow_clients_time_out(server, monkeypatch):
    srv, _ = server
    monkeypatch.setattr(control, "HANDSHAKE_TIMEOUT", 0.3)
    s = raw(srv.path)
    control.recv(s)
    started = time.monotonic()
    assert s.recv(1) == b"", "the server hangs up on a client that says nothing"
    assert time.monotonic() - started < 5
    s.close()


def test_connections_are_bounded(server, monkeypatch):
    srv, _ = server
    hung = [raw(srv.path) for _ in range(control.MAX_CONNECTIONS + 5)]
    time.sleep(0.2)
    closed = 0
    for s in hung:
        s.settimeout(2)
        try:
            hello = s.recv(4096)
        except socket.timeout:
            hello = b"?"
        closed += hello == b""
    assert closed >= 5, "connections beyond the bound are closed at once"
    for s in hung:
        s.close()
    deadline = time.monotonic() + 10
    while True:  # slots free up as the server notices the closed peers
        try:
            sock, _ = control.connect(srv.path, b"right-cookie", name="hello")
            sock.close()
            break
        except control.ControlError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_long_socket_paths_work(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    path = control.make_run_dir(deep) / "web.sock"
    assert len(str(path)) > 108
    srv = control.ControlServer(path, b"c", lambda conn: None, lambda: {"pid": 1}).start()
    try:
        sock, info = control.connect(path, b"c", name="hello")
        sock.close()
        assert info["pid"] == 1
    finally:
        srv.close()
    threading.enumerate()


def test_cookie_sources_in_order(tmp_path):
    root = tmp_path / "rel"
    (root / "releases").mkdir(parents=True)
    (root / "releases" / "COOKIE").write_text("from-file\n")
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "cookie").write_text("from-credential\n")
    assert control.read_cookie(root, {}) == b"from-file"
    assert control.read_cookie(root, {"CREDENTIALS_DIRECTORY": str(credentials)}) == \
        b"from-credential"
    assert control.read_cookie(root, {"CREDENTIALS_DIRECTORY": str(credentials),
                                      "RELEASE_COOKIE": "from-env"}) == b"from-env"
