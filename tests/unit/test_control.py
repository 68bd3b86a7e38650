"""The control protocol on its own: frames, the mutual HMAC handshake, hostile peers."""
from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from twelve.runtime.control import channel


@pytest.fixture
def server(tmp_path):
    """A ControlServer whose handler answers {"op": "echo"} requests."""
    handled = []

    def handle(conn, message):
        while message is not None:
            handled.append(message)
            channel.send(conn, {"echo": message})
            message = channel.recv(conn)

    path = Path(channel.make_run_dir(tmp_path), "web.sock")
    srv = channel.ControlServer(path, b"right-cookie", handle, lambda: {"pid": 1234}).start()
    yield srv, handled
    srv.close()


def test_handshake_and_requests(server):
    srv, handled = server
    sock, info = channel.connect(srv.path, b"right-cookie", name="hello")
    with sock:
        assert info["pid"] == 1234 and info["ok"] is True
        channel.send(sock, {"op": "echo", "n": 1})
        assert channel.recv(sock) == {"echo": {"op": "echo", "n": 1}}
    assert handled == [{"op": "echo", "n": 1}]


def test_wrong_cookie_fails_both_ways(server):
    srv, _ = server
    with pytest.raises(channel.ControlError, match="authentication failed"):
        channel.connect(srv.path, b"wrong-cookie", name="hello")


def test_not_running_and_stale_socket(tmp_path):
    path = Path(channel.make_run_dir(tmp_path), "web.sock")
    with pytest.raises(channel.NotRunning, match="hello is not running") as info:
        channel.connect(path, b"c", name="hello")
    assert info.value.exit_code == 3
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: what kill -9 leaves behind
    with pytest.raises(channel.NotRunning):
        channel.connect(path, b"c", name="hello")


def test_the_cookie_never_crosses_the_socket(server, monkeypatch):
    srv, _ = server
    sent = []
    original = channel.send
    monkeypatch.setattr(channel, "send", lambda s, m: (sent.append(repr(m)), original(s, m)))
    sock, _ = channel.connect(srv.path, b"right-cookie", name="hello")
    sock.close()
    assert sent and not any("right-cookie" in m for m in sent)


def test_frames_are_bounded_and_validated():
    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack(">I", channel.MAX_FRAME + 1))
        with pytest.raises(channel.ProtocolError, match="exceeds the limit"):
            channel.recv(b)
    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack(">I", 3) + b"[1]")
        with pytest.raises(channel.ProtocolError, match="JSON object"):
            channel.recv(b)
    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack(">I", 10) + b"{")
        a.close()
        with pytest.raises(channel.ProtocolError, match="middle of a frame"):
            channel.recv(b)


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
        channel.recv(s)  # the server's hello
        s.sendall(payload)
        s.close()
    sock, info = channel.connect(srv.path, b"right-cookie", name="hello")
    sock.close()
    assert info["pid"] == 1234


def test_slow_clients_time_out(server, monkeypatch):
    srv, _ = server
    monkeypatch.setattr(channel, "HANDSHAKE_TIMEOUT", 0.3)
    s = raw(srv.path)
    channel.recv(s)
    started = time.monotonic()
    assert s.recv(1) == b"", "the server hangs up on a client that says nothing"
    assert time.monotonic() - started < 5
    s.close()


def test_idle_connections_make_room_for_a_newcomer(server, monkeypatch):
    """Every slot held by peers that never answer the handshake: a real client still gets in
    (the oldest idle peers are told BUSY and closed), and no slot was refused."""
    srv, _ = server
    monkeypatch.setattr(channel, "EVICT_AFTER", 0.2)
    hung = [raw(srv.path) for _ in range(channel.MAX_CONNECTIONS + 5)]
    time.sleep(0.5)
    started = time.monotonic()
    sock, info = channel.connect(srv.path, b"right-cookie", name="hello")
    sock.close()
    assert info["pid"] == 1234 and time.monotonic() - started < 4
    told = 0
    for s in hung:
        s.settimeout(0.2)
        try:
            told += any(_frames(s, lambda m: m.get("busy")))
        except (OSError, channel.ProtocolError):
            pass
        s.close()
    assert told >= 5, "the evicted peers are told the node is busy"


def _frames(sock, predicate):
    while (message := channel.recv(sock)) is not None:
        yield predicate(message)


def test_many_clients_at_once_are_all_served(server):
    """Three times as many clients as slots, at once: every one is answered, none refused."""
    srv, handled = server
    results: list[object] = []

    def client(n: int) -> None:
        try:
            sock, _, first = channel.call(srv.path, b"right-cookie", {"op": "echo", "n": n},
                                          name="hello")
            sock.close()
            results.append(first["echo"]["n"])
        except Exception as e:  # noqa: BLE001 (the test reports every failure)
            results.append(e)

    count = 3 * channel.MAX_CONNECTIONS
    threads = [threading.Thread(target=client, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(count)), results


def test_an_authenticated_connection_without_a_request_is_closed(server, monkeypatch):
    srv, _ = server
    monkeypatch.setattr(channel, "REQUEST_TIMEOUT", 0.5)
    sock, _ = channel.connect(srv.path, b"right-cookie", name="hello")
    sock.settimeout(5)
    started = time.monotonic()
    assert channel.recv(sock) == {"error": channel.IDLE}
    assert channel.recv(sock) is None
    assert time.monotonic() - started < 4
    sock.close()


def test_a_full_backlog_is_waited_for_not_a_traceback(tmp_path, monkeypatch):
    # A node that accepts nothing (busy, or flooded): its listen backlog fills, and a client's
    # connect() with a timeout would fail at once with EAGAIN (BlockingIOError).
    path = Path(channel.make_run_dir(tmp_path), "web.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(0)
    pending = []
    try:
        while True:
            s = socket.socket(socket.AF_UNIX)
            s.setblocking(False)
            pending.append(s)
            s.connect(str(path))
    except BlockingIOError:
        pass
    accepted = []
    later = threading.Timer(0.3, lambda: accepted.append(listener.accept()[0]))
    later.start()  # room in the backlog: the waiting client gets in, then hears nothing
    try:
        with pytest.raises(channel.ControlError, match="control channel of hello failed"):
            channel.connect(path, b"c" * 16, name="hello", timeout=2)
        later.join()
        monkeypatch.setattr(channel, "BUSY_RETRY_FOR", 0.5)  # the backlog stays full
        with pytest.raises(channel.ControlError, match="the node is busy"):
            channel.connect(path, b"c" * 16, name="hello", timeout=0.3)
    finally:
        later.cancel()
        for s in pending + accepted:
            s.close()
        listener.close()


def test_long_socket_paths_work(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    path = Path(channel.make_run_dir(deep), "web.sock")
    assert len(str(path)) > 108
    srv = channel.ControlServer(path, b"c", lambda conn, request: None, lambda: {"pid": 1}).start()
    try:
        sock, info = channel.connect(path, b"c", name="hello")
        sock.close()
        assert info["pid"] == 1
    finally:
        srv.close()
    threading.enumerate()


def test_the_handshake_has_one_deadline(server, monkeypatch):
    """A peer that trickles its answer a byte at a time loses its slot at the deadline."""
    srv, _ = server
    monkeypatch.setattr(channel, "HANDSHAKE_TIMEOUT", 0.6)
    s = raw(srv.path)
    channel.recv(s)
    started = time.monotonic()
    try:
        for byte in struct.pack(">I", 200) + b"{" * 200:
            s.send(bytes([byte]))
            time.sleep(0.1)
            assert time.monotonic() - started < 3, "still connected long after the deadline"
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert time.monotonic() - started < 2
    s.close()


@pytest.fixture
def thread_errors(monkeypatch):
    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    return errors


@pytest.mark.parametrize("answer", [
    {"nonce": "ab" * 32, "proof": "é" * 64},       # non-ASCII: compare_digest raised TypeError
    {"nonce": "é" * 64, "proof": "00" * 32},
    {"nonce": "ab" * 32, "proof": "\ud800" * 64},   # a lone surrogate
])
def test_malformed_proofs_end_quietly(server, thread_errors, answer):
    srv, _ = server
    s = raw(srv.path)
    channel.recv(s)
    channel.send(s, answer)
    assert s.recv(4096) == b"", "the server hangs up"
    s.close()
    time.sleep(0.1)
    assert thread_errors == []


def test_deeply_nested_frames_end_quietly(server, thread_errors):
    srv, _ = server
    s = raw(srv.path)
    channel.recv(s)
    s.sendall(struct.pack(">I", 3000) + b"[" * 3000)
    assert s.recv(4096) == b""
    s.close()
    time.sleep(0.1)
    assert thread_errors == []
    sock, _ = channel.connect(srv.path, b"right-cookie", name="hello")
    sock.close()


def test_a_client_refuses_a_bad_hello_nonce(tmp_path):
    path = tmp_path / "fake.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(1)

    def fake_node():
        conn, _ = listener.accept()
        with conn:
            channel.send(conn, {"twelve": channel.PROTOCOL, "nonce": "zz-not-hex"})
            conn.recv(1)

    t = threading.Thread(target=fake_node)
    t.start()
    with pytest.raises(channel.ControlError, match="not a twelve control socket"):
        channel.connect(path, b"c" * 16, name="hello")
    t.join()
    listener.close()


def test_run_dir_must_be_a_real_directory(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "run").symlink_to(elsewhere)
    with pytest.raises(channel.ControlError, match="is not a directory") as e:
        channel.make_run_dir(tmp_path / "a")
    assert "Remove it" in e.value.hint
    assert oct(elsewhere.stat().st_mode & 0o777) == "0o755", "no chmod through the link"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "run").write_text("")
    with pytest.raises(channel.ControlError, match="is not a directory"):
        channel.make_run_dir(tmp_path / "b")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give run/ to another user")
def test_run_dir_of_another_user_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(0o777)
    os.chown(run, 65534, 65534)
    with pytest.raises(channel.ControlError, match="belongs to uid 65534") as e:
        channel.make_run_dir(tmp_path)
    assert "RELEASE_TMP" in e.value.hint
    assert oct(run.stat().st_mode & 0o777) == "0o777", "left as it was"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root")
def test_a_non_root_node_gets_the_error_not_a_traceback():
    """As nobody, facing root's 0700 run/: the clear error (no PermissionError traceback)."""
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="twelve-runuser-"))  # pytest's tmp is root's only
    try:
        shared.chmod(0o755)
        (shared / "run").mkdir(mode=0o700)
        src = shared / "src"  # a copy of the runtime that nobody can read
        shutil.copytree(Path(channel.__file__).resolve().parents[2], src / "twelve",
                        ignore=shutil.ignore_patterns("__pycache__"))
        code = ("import sys; from pathlib import Path; from twelve.runtime.control import channel\n"
                "try:\n    channel.make_run_dir(Path(sys.argv[1]))\n"
                "except channel.ControlError as e:\n    print(e.render())\n")
        proc = subprocess.run([shutil.which("runuser"), "-u", "nobody", "--",
                               "/usr/bin/python3", "-c", code, str(shared)],
                              capture_output=True, text=True,
                              env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"})
    finally:
        shutil.rmtree(shared)
    assert "belongs to uid 0, not to this node's user" in proc.stdout, proc.stderr
    assert "Traceback" not in proc.stderr


def test_pid_and_lock_files_do_not_follow_symlinks(tmp_path):
    from twelve.runtime.process import node

    run = Path(channel.make_run_dir(tmp_path))
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (run / "web.pid").symlink_to(victim)
    node.write_pid(run / "web.pid")
    assert victim.read_text() == "precious\n"
    assert (run / "web.pid").read_text() == f"{os.getpid()}\n"
    assert not (run / "web.pid").is_symlink()
    (run / "web.lock").symlink_to(victim)
    with pytest.raises(channel.ControlError, match="is a symlink") as e:
        channel.open_private(run / "web.lock", os.O_RDWR)
    assert "Remove it" in e.value.hint
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("key_size", [0, 1, 16, 48, 64, 65, 200])
def test_the_channels_hmac_is_rfc_2104_hmac_sha256(key_size):
    """channel.hmac_sha256 (no OpenSSL, for a fast client) gives what the hmac module gives."""
    import hashlib
    import hmac as reference

    key = os.urandom(key_size)
    for message in (b"", b"x", os.urandom(100), os.urandom(1000)):
        assert channel.hmac_sha256(key, message) == \
            reference.new(key, message, hashlib.sha256).hexdigest()
